"""Reading, generating, decoding and augmenting the competition's data."""

"""Animal detection and cropping: boxes in MegaDetector's batch-output format, crops on disk."""

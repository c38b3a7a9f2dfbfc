"""What a camera trap writes on its frames: the info bar's clock, the camera model, IR night
frames, and the bursts (sequences) that one animal's visit leaves.

`infobar` finds and prepares the text, `ocr` reads it (Tesseract), `sequences` groups bursts,
`run` writes the meta.csv contract that the ensemble, the report and `predict` read.
"""

"""Measurements of the product, kept beside it and never installed with it (as timm's
`benchmark.py` and Accelerate's `benchmarks/`): each is `python -m benchmarks.<name>` with its own
arguments, and imports the very pieces it measures from `kaggle_style` (loader settings, the
optimisation step, the Accelerator settings), so a figure describes the real path.

Shared real data (frames, tables, weights) comes from an argument or $KAGGLE_STYLE_SHARED_DATA
(`benchmarks.common.shared_data`); the Makefile passes `../shared/data`.
"""

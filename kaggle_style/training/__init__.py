"""The trainer as a library: config (no torch), data, recipe, loop, inference, checkpoint, run.

`kaggle_style.stages.train` is the thin command over `run.run_training`; `tuning`, `deployment`
and the repository's `benchmarks/` use the same pieces, so one trainer serves every caller.
"""

"""The second stage: blend model runs on their OOF predictions, then optional per-row steps.

blend.py (weights, and `Blend`, the fitted second stage that `predict` applies to new images),
calibration.py (temperature), stacking.py (logistic regression on the models' log-probabilities),
sequences.py (pooling over camera-trap bursts, time-of-day adjustment), sites.py (per-site
label-shift adaptation), chain.py (how each step gets an honest nested estimate), config.py
(EnsembleConfig), inputs.py (reading runs, labels, sites, meta.csv), run.py (`ensemble()`: fit,
gate, write), table.py (the printed comparison). `kaggle_style.stages.ensemble` is the command
over `run.ensemble`.
"""

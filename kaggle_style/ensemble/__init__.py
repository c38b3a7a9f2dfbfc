"""The second stage: blend model runs on their OOF predictions, then optional per-row steps.

`kaggle_style.stages.ensemble` is the command over `run.ensemble`. Imports go one way, from the
top of this list to the bottom (a test finds no import circle):

- run.py: `ensemble()` (read, fit, write) and `build_ensemble`: the chain fitted on every OOF
  row, the gate of each step, and the honest nested figure, every choice made without its fold.
- table.py: the printed comparison, one row per model and applied step.
- blend.py: weights over models, temperature scaling, and `Blend`, the fitted second stage that
  `predict` rebuilds from ensemble.json and applies to new images.
- inputs.py: everything the ensemble reads (runs' oof.csv and test.csv, labels, sites,
  meta.csv, detections), and an ensemble's folder with its members checked unchanged.
- steps.py: the per-row steps, one class each, in `STEPS`: the one ordered registry that the
  chain, `Blend`, the table, the HTML report, `make demo`'s summary, predict and the tests iterate.
- schema.py: ensemble.json as plain typed data (pydantic), versioned; read and written only here.
- config.py: `EnsembleConfig`, every key checked before any work.
- stacking.py: logistic regression on the models' log-probabilities.
- sequences.py: pooling over camera-trap bursts; the time-of-day adjustment.
- sites.py: per-site label-shift adaptation.
- detections.py: detection-aware stacking, members weighted per image by the detector's boxes.
- chain.py: how each step gets an honest nested estimate (fit on k-1 folds, apply to the k-th).
- base.py: what all of them share and that imports none of them: `EnsembleError`, `RowFacts`,
  `Inputs`, `Meta`, the floored log of probabilities.
"""

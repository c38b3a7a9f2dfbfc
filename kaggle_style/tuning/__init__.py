"""Optuna over the trainer: search space, study storage, objective, export of the best trial.

`space` turns a config's `search_space:` into sampled TrainConfig values; `study` opens shared
storages and studies; `objective` runs one trial (one training, on one or several processes);
`export` writes the best trial back as a train config; `run` is what `kaggle-style tune` calls.
"""

"""Optuna tuning of each network's epochs and learning rate (paper 3.4's preliminary trainings).

``study``: the study itself (validation split, storage, sampler, MLflow run, best params);
``trial``: one trial's training, per-epoch reports and pruning; ``plots``: the trials table and
Optuna's plots. The file of tuned values and how training reads it live in
``fer_xai.training.tuned`` (no Optuna import).
"""

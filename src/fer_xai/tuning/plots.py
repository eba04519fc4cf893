"""The files a study leaves besides its storage: the trials table and Optuna's plots."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from .. import layout
from .trial import OBJECTIVE

log = logging.getLogger(__name__)


def save_plots(study, out_dir: Path, seed: int) -> list[Path]:
    """Optuna's matplotlib plots: optimization history, parameter importances, per-epoch values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    plots = {
        "optimization_history": lambda: ovm.plot_optimization_history(study, target_name=OBJECTIVE),
        # fANOVA with a fixed seed: the same trials give the same importances.
        "param_importances": lambda: ovm.plot_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed), target_name=OBJECTIVE),
        "intermediate_values": lambda: ovm.plot_intermediate_values(study),
    }
    written = []
    for name, make in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                fig = np.asarray(make()).flat[0].figure
            except Exception as exc:  # noqa: BLE001 - e.g. importances need 2+ trials that differ in score
                log.warning("%s plot: %s (the PNG says so instead)", name, exc)
                fig, ax = plt.subplots(figsize=(6, 1.6))
                ax.axis("off")
                ax.text(0.5, 0.5, f"{name.replace('_', ' ')} unavailable:\n{exc}", ha="center", va="center",
                        wrap=True, fontsize=9)
        path = out_dir / layout.tune_plot_name(name)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def trials_frame(study):
    """The trials table (``trials.csv``): number, state, score, params, user attributes, seconds."""
    df = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs", "duration"))
    if "duration" in df:
        df["duration"] = df["duration"].dt.total_seconds().round(2)
    return df.rename(columns={"value": OBJECTIVE})

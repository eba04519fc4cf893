"""``fer-xai <stage>``: the single entry point that dvc.yaml, MLproject and users call."""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from .config import Params, ParamsError, load_params
from .errors import FerXaiError
from .redact import RedactingFormatter

log = logging.getLogger("fer_xai")

# Stage modules, imported lazily so `fer-xai --help` does not pay for TensorFlow or dlib.
# Each module exposes a click command named ``cli``; the one-line help is listed here so that
# `fer-xai --help` imports none of them.
STAGES: dict[str, tuple[str, str]] = {
    "synth": ("fer_xai.stages.synth", "Generate the embedded synthetic expressive-face dataset."),
    "data": ("fer_xai.stages.data_add", "Add, validate and list datasets (adapters for CK+, JAFFE, ...)."),
    "prepare": ("fer_xai.stages.prepare", "Detect, landmark, align and crop every face."),
    "split": ("fer_xai.stages.split", "Subject-grouped, stratified cross-validation folds."),
    "models": ("fer_xai.stages.models", "List the networks of the zoo with input sizes and parameter counts."),
    "train": (
        "fer_xai.stages.train",
        "Train a network per fold (on the others); test, track and register each fold model.",
    ),
    "evaluate": ("fer_xai.stages.evaluate", "Cross-validation accuracy per network (paper Figure 5)."),
    "explain": ("fer_xai.stages.explain", "LIME explanations of registered fold models (or of new images)."),
    "masks": ("fer_xai.stages.masks", "Build the Ekman masks and per-AU region masks in canonical face space."),
    "heatmaps": ("fer_xai.stages.heatmaps", "Warp explanations into canonical space and average them into heatmaps."),
    "compare": ("fer_xai.stages.compare", "Compare heatmaps with Ekman masks and with each other."),
    "bench": ("fer_xai.stages.bench", "Does the answer depend on the explainer? Every method against planted "
              "truth, neutral swaps, deletion, randomisation and chance."),
    "report": ("fer_xai.stages.report", "Write the self-contained HTML report of the study."),
    "tune": ("fer_xai.stages.tune", "Optuna search over a network's epochs and learning rate."),
    "profile": ("fer_xai.stages.profile", "Switch params.yaml to a profile, e.g. the paper's full study."),
    "repro": ("fer_xai.stages.repro", "Run the stale DVC stages: `dvc repro`, or in parallel on Ray (--executor ray)."),
}


TF_MISSING = ("TensorFlow is not installed: install the project with one of its TensorFlow extras, "
              "`pip install -e '.[cpu]'` or `pip install -e '.[gpu]'` (CUDA), or run `make install [TF=gpu]`")


@dataclass
class CliContext:
    params_file: Path | None
    overrides: tuple[str, ...] = ()
    _params: Params | None = field(default=None, repr=False)

    @property
    def params(self) -> Params:
        if self._params is None:
            try:
                self._params = load_params(self.params_file, self.overrides)
            except ParamsError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._params


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(STAGES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in STAGES:
            return None
        return importlib.import_module(STAGES[name][0]).cli

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Stages"):
            formatter.write_dl([(name, helptext) for name, (_, helptext) in STAGES.items()])

    def invoke(self, ctx: click.Context):
        # Library code raises domain errors; the CLI turns them into one-line errors here, once.
        try:
            return super().invoke(ctx)
        except FerXaiError as exc:
            raise click.ClickException(str(exc)) from exc
        except ModuleNotFoundError as exc:
            # TensorFlow comes from an extra (pyproject.toml: no default extra exists in pip).
            if (exc.name or "").split(".")[0] != "tensorflow":
                raise
            raise click.ClickException(TF_MISSING) from exc


def setup_logging(verbosity: int) -> None:
    level = logging.DEBUG if verbosity > 0 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    # Any log line, ours or a library's, may carry a store URL with its password.
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler])
    for noisy in ("alembic", "urllib3", "matplotlib", "PIL", "git", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(cls=LazyGroup)
@click.option(
    "--params",
    "params_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="FER_XAI_PARAMS",
    help="Parameters file (default: params.yaml at the project root).",
)
@click.option(
    "-S",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a parameter for this call, e.g. -S synth.n_subjects=12 (value parsed as YAML).",
)
@click.option("-v", "--verbose", count=True, help="More logging.")
@click.pass_context
def main(ctx: click.Context, params_file: Path | None, overrides: tuple[str, ...], verbose: int) -> None:
    """fer-xai: do facial-expression networks look where humans look?"""
    setup_logging(verbose)
    ctx.obj = CliContext(params_file, tuple(overrides))


if __name__ == "__main__":  # pragma: no cover
    main()

"""``fer-xai repro [--executor ray] [targets...]``: run the study's stale DVC stages.

``--executor dvc`` (the default) is ``dvc repro``: one stage at a time. ``--executor ray`` runs
every stale stage whose inputs are ready as a Ray task (resources from ``executor.resources``),
records each finished stage with ``dvc commit`` and prints what ran where; afterwards
``dvc status`` is clean. A failed stage is not recorded and the next call retries it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from ..config import Params
from ..paths import repo_root


@click.command("repro")
@click.argument("targets", nargs=-1)
@click.option("--executor", type=click.Choice(["dvc", "ray"]), default="dvc", show_default=True,
              help="dvc: `dvc repro`, one stage at a time; ray: stale stages as Ray tasks, in parallel.")
@click.option("--address", default=None, metavar="ADDR",
              help="Ray cluster to use (e.g. auto, or ray://head:10001); default: start a local Ray.")
@click.option("--num-cpus", type=click.IntRange(min=1), default=None,
              help="CPUs of the local Ray (default: all); ignored with --address.")
@click.pass_obj
def cli(obj, targets: tuple[str, ...], executor: str, address: str | None, num_cpus: int | None) -> None:
    """Run the stale stages of dvc.yaml (or of TARGETS and what they need)."""
    root = repo_root()
    if executor == "dvc":
        dvc = Path(sys.executable).with_name("dvc")
        raise SystemExit(subprocess.call([str(dvc) if dvc.exists() else "dvc", "repro", *targets], cwd=root))
    from ..executor.driver import repro
    from ..executor.record import format_table
    from ..executor.scheduler import FAILED

    params: Params = obj.params
    outcomes, record = repro(params, root, targets, address=address, num_cpus=num_cpus)
    click.echo(format_table(outcomes))
    click.echo(f"record: {record}")
    failed = [o.stage for o in outcomes if o.status == FAILED]
    if failed:
        raise click.ClickException(f"{len(failed)} stage(s) failed and were not recorded: {', '.join(failed)}; "
                                   "run again to retry them (logs: see the record)")

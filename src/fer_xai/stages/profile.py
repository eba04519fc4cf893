"""``fer-xai profile``: switch ``params.yaml`` between the demo and the paper's full study.

A profile (:mod:`fer_xai.profiles`) is a YAML file in ``profiles/`` (or any path) with a
``description`` and a ``set`` mapping of dotted ``params.yaml`` keys to values, the same keys
``fer-xai -S`` and ``dvc exp run -S`` take::

    fer-xai profile list                # the profiles in profiles/
    fer-xai profile show paper          # its description and values
    fer-xai profile diff paper          # what `apply` would change in params.yaml
    fer-xai profile apply paper         # write them into params.yaml (comments kept)

``apply`` validates the result before ``params.yaml`` is replaced, so an invalid profile leaves
it untouched. The demo profile is the ``params.yaml`` in git: ``git checkout params.yaml``
returns to it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
import yaml

from ..profiles import UNSET, apply_profile, available, load_profile, missing_datasets, plan
from ..redact import redact

log = logging.getLogger(__name__)


def _fmt(v: Any) -> str:
    if v is UNSET:
        return "(unset)"
    return redact(yaml.safe_dump(v, default_flow_style=True, width=10**6).strip().removesuffix("...").strip())


def _params_file(obj) -> Path:
    from ..config import params_path

    return Path(obj.params_file) if obj is not None and obj.params_file is not None else params_path()


@click.group("profile")
def cli() -> None:
    """Switch params.yaml to a profile (e.g. the paper's full study): list, show, diff, apply."""


@cli.command("list")
def list_cmd() -> None:
    """The profiles in profiles/."""
    for name in available():
        prof = load_profile(name)
        click.echo(f"{name}: {prof.description.splitlines()[0] if prof.description else ''}")


@cli.command("show")
@click.argument("name")
def show(name: str) -> None:
    """A profile's description and the values it sets."""
    prof = load_profile(name)
    click.echo(f"# {prof.path}\n{prof.description}\n")
    for key, value in prof.values.items():
        click.echo(f"{key}: {_fmt(value)}")


@cli.command("diff")
@click.argument("name")
@click.pass_obj
def diff(obj, name: str) -> None:
    """What `fer-xai profile apply NAME` would change in params.yaml."""
    pfile = _params_file(obj)
    changes = plan(pfile, load_profile(name))
    if not changes:
        click.echo(f"{pfile}: already matches profile {name!r}")
    for ch in changes:
        click.echo(f"{ch.key}:\n  - {_fmt(ch.old)}\n  + {_fmt(ch.new)}")


@cli.command("apply")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Only print the changes (same as `fer-xai profile diff`).")
@click.pass_obj
def apply(obj, name: str, dry_run: bool) -> None:
    """Write profile NAME's values into params.yaml (comments kept, validated first)."""
    pfile = _params_file(obj)
    prof = load_profile(name)
    if dry_run:
        for ch in plan(pfile, prof):
            click.echo(f"{ch.key}: {_fmt(ch.old)} -> {_fmt(ch.new)}")
        return
    log.info("reading profile %s and %s", prof.path, pfile)
    changes = apply_profile(pfile, prof)
    for ch in changes:
        click.echo(f"{ch.key}: {_fmt(ch.old)} -> {_fmt(ch.new)}")
    click.echo(f"{pfile}: {len(changes)} value(s) changed by profile {name!r}"
               + ("" if changes else " (already applied)"))
    missing = missing_datasets(pfile)
    if missing:
        click.echo("datasets not added yet (add each before `dvc repro`): "
                   + "; ".join(f"fer-xai data add {m} /path/to/{m}" for m in missing))

"""``fer-xai data``: bring a licensed dataset into the project, check it, version it.

``fer-xai data add NAME PATH`` reads PATH with a dataset adapter (auto-detected or
``--adapter``), refuses it when no usable image is found, copies it (or symlinks it with
``--link``) to ``<data.raw_dir>/NAME`` through a temporary folder renamed at the end (nothing
half-written on failure, see :mod:`fer_xai.datasets.install`), writes
``<data.raw_dir>/NAME.validation.json`` (:mod:`fer_xai.datasets.validation`), prints a summary,
runs ``dvc add`` on the copy and registers ``{name, adapter, options}`` under ``data.datasets``
in ``params.yaml`` (comments kept, :mod:`fer_xai.datasets.register`). The copy is re-scanned
before it is renamed into place: a copy without usable images (or, when DVC will track it, with
file names DVC cannot store) is removed again and nothing is registered.

``fer-xai data validate NAME`` re-checks a dataset already in place; ``fer-xai data adapters``
lists the adapters, their layouts and options.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from ..datasets import ADAPTERS
from ..datasets.base import Rejection, display_name
from ..datasets.install import (
    check_destination,
    clean_stale_temps,
    copy_check,
    dvc_add,
    dvc_skip_reason,
    install_dataset,
    source_folder,
    valid_name,
)
from ..datasets.register import register_dataset
from ..datasets.validation import (
    build_report,
    rel,
    require_dvc_names,
    require_usable,
    scan_folder,
    write_report,
)
from ..paths import repo_root, resolve


def parse_options(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``("apex_frames=3", "include_neutral=true")`` -> ``{"apex_frames": 3, "include_neutral": True}``.

    Numbers and booleans (YAML spelling: true/false/yes/no) get their type; everything else
    stays the literal string (so regexes such as ``[A-Z]+`` are not read as YAML lists)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: expected key=value", param_hint="--option")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            parsed = None
        out[key] = parsed if isinstance(parsed, (bool, int, float)) else value
    return out


def print_summary(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, width=max(80, shutil.get_terminal_size((100, 20)).columns))
    console.print(f"[bold]{report['dataset']}[/bold]: {report['n_images']} images, "
                  f"{report['n_subjects']} subjects (adapter {report['adapter']})")
    table = Table()
    table.add_column("label")
    table.add_column("images", justify="right")
    table.add_column("subjects", justify="right")
    for label, n in report["labels"].items():
        n_subj = sum(1 for c in report["labels_per_subject"].values() if c.get(label))
        table.add_row(label, str(n), str(n_subj), style=None if n else "red")
    console.print(table)
    if report["subjects"]:
        counts = sorted(report["subjects"].values())
        console.print(f"images per subject: min {counts[0]}, median {counts[len(counts) // 2]}, "
                      f"max {counts[-1]}; with dataset landmarks: {report['with_landmarks']}, "
                      f"with masks: {report['with_masks']}")
    rej = report["rejections"]
    if rej["total"]:
        console.print(f"rejected while scanning: {rej['total']}")
        rt = Table()
        rt.add_column("reason")
        rt.add_column("files", justify="right")
        rt.add_column("example")
        examples: dict[str, str] = {}
        for item in rej["items"]:
            examples.setdefault(item["reason"], f"{item['path']} {item['detail']}".strip())
        for reason, n in rej["by_reason"].items():
            rt.add_row(reason, str(n), examples.get(reason, ""))
        console.print(rt)
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


def _params_file(obj) -> Path:
    from ..config import params_path

    return Path(obj.params_file) if obj.params_file is not None else params_path()


@click.group("data")
def cli() -> None:
    """Add, validate and list datasets (adapters for CK+, BU-4DFE, JAFFE, WSEFEP, FEGA, ...)."""


@cli.command("add")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--adapter", "adapter", default="auto", show_default=True,
              type=click.Choice(["auto", *ADAPTERS]), help="Dataset layout.")
@click.option("--option", "-o", "option_pairs", multiple=True, metavar="KEY=VALUE",
              help="Adapter option (repeatable), e.g. -o apex_frames=3.")
@click.option("--link", is_flag=True, help="Symlink PATH instead of copying it (not DVC-tracked).")
@click.option("--no-dvc", is_flag=True, help="Do not run `dvc add` on the copy.")
@click.option("--no-register", is_flag=True, help="Do not add the dataset to params.yaml.")
@click.option("--force", is_flag=True, help="Replace an existing dataset of the same name.")
@click.pass_obj
def add(obj, name: str, path: Path, adapter: str, option_pairs: tuple[str, ...], link: bool,
        no_dvc: bool, no_register: bool, force: bool) -> None:
    """Copy the dataset folder PATH to <data.raw_dir>/NAME, validate, `dvc add` and register it."""
    if not valid_name(name):
        raise click.BadParameter(f"{name!r}: use letters, digits, '_', '-' or '.'", param_hint="NAME")
    params = obj.params
    src = source_folder(path)
    raw_dir = resolve(params.data.raw_dir)
    dest = raw_dir / name
    user_options = parse_options(option_pairs)
    scan_options = {"include_neutral": params.data.include_neutral, **user_options}
    clean_stale_temps(raw_dir)
    root = repo_root()
    skip_dvc = dvc_skip_reason(no_dvc, link, root, dest)
    in_place = check_destination(src, dest, force)

    # 1. Check the source before anything is written.
    scan = scan_folder(src, name, adapter, scan_options)
    require_usable(scan, src)
    chosen = scan.adapter
    click.echo(f"{display_name(src)}: {len(scan.records)} usable images (adapter {chosen})")

    # 2. Copy / link through a temporary folder, checked before it is renamed into place.
    skipped: list[Rejection] = []
    if in_place:
        if skip_dvc is None:
            require_dvc_names(dest, src)
        click.echo(f"{dest}: already in place, not copied")
    else:
        check = copy_check(name, chosen, scan_options, src, dest, dvc=skip_dvc is None)
        skipped = install_dataset(src, dest, link=link, force=force, check=check)
        click.echo(f"{'linked' if link else 'copied'} to {dest}")

    # 3. Validate the installed copy and write the report.
    final = scan_folder(dest, name, chosen, scan_options)
    final.rejections.extend(skipped)  # the copy has no loops left; the source had them
    report = build_report(final, name, dest, user_options, source=None if in_place else src, linked=link)
    report_path = write_report(raw_dir, name, report)
    print_summary(report)
    click.echo(f"validation report: {report_path}")

    # 4. Version with DVC.
    if skip_dvc is not None:
        click.echo(skip_dvc)
    else:
        dvc_file = dvc_add(dest, root)
        click.echo(f"dvc add: wrote {dvc_file} (commit it: git add {dvc_file} "
                   f"{rel(dest.parent / '.gitignore', root)})")

    # 5. Register in params.yaml.
    if no_register:
        click.echo("--no-register: params.yaml unchanged")
    else:
        pfile = _params_file(obj)
        status = register_dataset(pfile, name, chosen, user_options)
        click.echo(f"{pfile}: {status} data.datasets entry '{name}' (adapter {chosen})")


@cli.command("validate")
@click.argument("name")
@click.option("--adapter", "adapter", default=None, type=click.Choice(["auto", *ADAPTERS]),
              help="Override the adapter registered in params.yaml.")
@click.option("--option", "-o", "option_pairs", multiple=True, metavar="KEY=VALUE",
              help="Override/add an adapter option (repeatable).")
@click.pass_obj
def validate(obj, name: str, adapter: str | None, option_pairs: tuple[str, ...]) -> None:
    """Re-scan <data.raw_dir>/NAME and rewrite NAME.validation.json."""
    params = obj.params
    raw_dir = resolve(params.data.raw_dir)
    root = raw_dir / name
    if not root.is_dir():
        raise click.ClickException(f"{root}: no such dataset folder (add it with `fer-xai data add {name} PATH`)")
    entry = next((d for d in params.data.datasets if d.name == name), None)
    chosen = adapter or (entry.adapter if entry else "auto")
    user_options = {**(dict(entry.options) if entry else {}), **parse_options(option_pairs)}
    scan = scan_folder(root, name, chosen, {"include_neutral": params.data.include_neutral, **user_options})
    report = build_report(scan, name, root, user_options)
    report_path = write_report(raw_dir, name, report)
    print_summary(report)
    click.echo(f"validation report: {report_path}")
    if entry is None:
        click.echo(f"note: '{name}' is not registered in data.datasets (fer-xai data add {name} {root} --no-dvc)")
    require_usable(scan, root)


@cli.command("adapters")
def adapters() -> None:
    """List the dataset adapters, their layouts and options."""
    from ..datasets import AUTO_ORDER

    for name, ad in ADAPTERS.items():
        auto = "" if name in AUTO_ORDER else "  (never auto-detected)"
        click.echo(f"{name}{auto}\n  layout: {ad.layout}")
        for key, (default, help_) in ad.all_options().items():
            click.echo(f"  -o {key}={default!r}: {help_}")

"""``fer-xai data``: bring a licensed dataset into the project, check it, version it.

``fer-xai data add NAME PATH`` reads PATH with a dataset adapter (auto-detected or
``--adapter``), refuses it when no usable image is found, copies it (or symlinks it with
``--link``) to ``<data.raw_dir>/NAME`` through a temporary folder renamed at the end (nothing
half-written on failure), writes ``<data.raw_dir>/NAME.validation.json`` (counts per label and
subject, content duplicates, rejections), prints a summary, runs ``dvc add`` on the copy and
registers ``{name, adapter, options}`` under ``data.datasets`` in ``params.yaml`` (comments kept).

The temporary folders are ``.NAME.new-HOST-PID.tmp`` (the copy being made) and
``.NAME.old-HOST-PID.tmp`` (the previous version during a ``--force`` swap). ``.dvcignore``'s
``**/.*.tmp`` keeps them out of DVC's hash of ``data/raw`` (a ``prepare`` dependency), and the
next ``data add`` removes those of dead processes of this host (or puts a swapped-out previous
version back). The copy is re-scanned before it is renamed into place: a copy without usable
images (or, when DVC will track it, with file names DVC cannot store) is removed again and
nothing is registered. Folders reached twice through symlinks (loops) are copied once and
listed in the report.

``fer-xai data validate NAME`` re-checks a dataset already in place; ``fer-xai data adapters``
lists the adapters, their layouts and options.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from ..datasets import (
    ADAPTERS,
    AdapterOptionError,
    LayoutError,
    Rejection,
    ScanResult,
    detect_adapter,
    get_adapter,
)
from ..datasets.base import SeenFolders, display_name
from ..labels import EXPRESSIONS, NEUTRAL
from ..paths import repo_root, resolve, write_json_atomic

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COPY_IGNORE = shutil.ignore_patterns(".git", ".dvc", "__MACOSX", ".DS_Store", "Thumbs.db")
MAX_LISTED_REJECTIONS = 1000

# Temporary folders next to the dataset: .NAME.{new,old}-HOST-PID.tmp. The host is part of the
# name so that a data/raw shared between machines (or containers) is only cleaned by the host
# whose process IDs the name refers to.
_HOST = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname().split(".")[0]) or "localhost"
_TEMP_NAME = re.compile(r"^\.(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)"  # a dataset name (see _NAME)
                        r"\.(?P<kind>new|old)-(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.tmp$")
MAX_LISTED_NAMES = 5


# ----------------------------------------------------------------------------- helpers


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


def _rel(path: str | os.PathLike, base: Path) -> str:
    try:
        return Path(path).relative_to(base).as_posix()
    except ValueError:
        return str(path)


def content_duplicates(paths: list[Path]) -> list[list[Path]]:
    """Groups of files with identical bytes (sizes compared first; only same-size files hashed)."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for p in paths:
        try:
            by_size[p.stat().st_size].append(p)
        except OSError:
            continue
    groups: list[list[Path]] = []
    for same in by_size.values():
        if len(same) < 2:
            continue
        by_hash: dict[str, list[Path]] = defaultdict(list)
        for p in same:
            h = hashlib.sha1()
            with p.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            by_hash[h.hexdigest()].append(p)
        groups.extend(sorted(g) for g in by_hash.values() if len(g) > 1)
    return sorted(groups)


def build_report(scan: ScanResult, dataset: str, root: Path, options: dict[str, Any],
                 source: Path | None = None, linked: bool = False) -> dict[str, Any]:
    """The validation report written next to the dataset (JSON-serialisable)."""
    records = scan.records
    labels = Counter(r.label for r in records)
    label_names = list(EXPRESSIONS) + ([NEUTRAL] if labels.get(NEUTRAL) else [])
    per_subject: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        per_subject[r.subject][r.label] += 1
    unique_paths = sorted({r.path for r in records})
    dups = content_duplicates(unique_paths)
    unknown = Counter(r.detail for r in scan.rejections if r.reason == "unknown_label")
    warnings: list[str] = []
    missing = [e for e in EXPRESSIONS if not labels.get(e)]
    if missing:
        warnings.append(f"no images for: {', '.join(missing)}")
    if dups:
        warnings.append(f"{len(dups)} group(s) of byte-identical images")
    if len(per_subject) < 2 and records:
        warnings.append("a single subject: subject-grouped folds are impossible")
    if scan.rejections:
        warnings.append(f"{len(scan.rejections)} file(s) rejected while scanning")
    return _printable({
        "dataset": dataset,
        "adapter": scan.adapter,
        "options": options,
        "path": str(root),
        "source": str(source) if source is not None else None,
        "linked": linked,
        "checked_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "ok": bool(records),
        "n_images": len(records),
        "n_subjects": len(per_subject),
        "labels": {name: int(labels.get(name, 0)) for name in label_names},
        "subjects": {s: int(sum(c.values())) for s, c in sorted(per_subject.items())},
        "labels_per_subject": {s: dict(sorted(c.items())) for s, c in sorted(per_subject.items())},
        "with_landmarks": sum(r.landmarks is not None for r in records),
        "with_masks": sum(r.mask_path is not None for r in records),
        "duplicates": [[_rel(p, root) for p in g] for g in dups],
        "unknown_labels": dict(sorted(unknown.items())),
        "rejections": {
            "total": len(scan.rejections),
            "by_reason": scan.rejection_counts(),
            "items": [{"path": _rel(r.path, root), "reason": r.reason, "detail": r.detail}
                      for r in scan.rejections[:MAX_LISTED_REJECTIONS]],
            "truncated": len(scan.rejections) > MAX_LISTED_REJECTIONS,
        },
        "info": scan.info,
        "warnings": warnings,
    })


def _printable(value: Any) -> Any:
    """``value`` with every string through :func:`display_name`: a file name that is not UTF-8
    would otherwise break the terminal, or JSON readers that reject lone surrogates."""
    if isinstance(value, str):
        return display_name(value)
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


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


def _scan(root: Path, dataset: str, adapter: str, options: dict[str, Any]) -> ScanResult:
    try:
        chosen = detect_adapter(root, options) if adapter == "auto" else get_adapter(adapter)
        return chosen.scan(root, dataset, **options)
    except LayoutError as exc:
        raise click.ClickException(str(exc)) from exc
    except AdapterOptionError as exc:
        raise click.ClickException(f"{root}: {exc}") from exc


def _by_reason(scan: ScanResult) -> str:
    return ", ".join(f"{k}: {v}" for k, v in scan.rejection_counts().items()) or "no image files"


def _require_usable(scan: ScanResult, root: Path) -> None:
    if scan.records:
        return
    raise click.ClickException(
        f"{display_name(root)}: zero usable images with adapter '{scan.adapter}' ({_by_reason(scan)}). "
        "Check the layout/options (`fer-xai data adapters`) or write a manifest.csv for --adapter csv."
    )


def _require_usable_copy(copy: Path, name: str, adapter: str, options: dict[str, Any],
                         src: Path, dest: Path) -> None:
    """Refuse a copy that lost the images its source has (the copy leaves out __MACOSX, .git,
    .dvc and dereferences symlinks), before it replaces or registers anything."""
    try:
        scan = get_adapter(adapter).scan(copy, name, **options)
    except LayoutError:
        problem = "its layout is not recognised in the copy"
    else:
        if scan.records:
            return
        problem = _by_reason(scan)
    raise click.ClickException(
        f"dataset '{name}': the copy of {display_name(src)} for {dest} has no usable image "
        f"(adapter '{adapter}': {problem}); the copy was removed, nothing else changed"
    )


def _require_dvc_names(root: Path, src: Path) -> None:
    """DVC cannot store a file name that is not valid UTF-8 (`dvc add` dies with an encoding
    error): refuse such a copy with the names, while nothing is registered yet."""
    bad = sorted(display_name(Path(dirpath, n).relative_to(root))
                 for dirpath, dirnames, filenames in os.walk(root)
                 for n in (*dirnames, *filenames)
                 if display_name(n) != n)  # only undecodable bytes are escaped
    if bad:
        shown = ", ".join(bad[:MAX_LISTED_NAMES]) + (", ..." if len(bad) > MAX_LISTED_NAMES else "")
        raise click.ClickException(
            f"{display_name(src)}: {len(bad)} file name(s) are not valid UTF-8, which DVC cannot track: "
            f"{shown}. Rename them (e.g. with convmv) or add the dataset with --no-dvc."
        )


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def temp_folder(dest: Path, kind: str, pid: int | None = None) -> Path:
    """The temporary sibling of ``dest``: ``kind`` ``new`` (the copy) or ``old`` (the version
    being replaced). Hidden and ending in ``.tmp``, so ``.dvcignore``'s ``**/.*.tmp`` covers it."""
    return dest.with_name(f".{dest.name}.{kind}-{_HOST}-{os.getpid() if pid is None else pid}.tmp")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host; when unsure, True (nothing gets removed)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process / a number no PID can be
    return True


def clean_stale_temps(raw_dir: Path) -> None:
    """Clean up after ``data add`` runs of this host that were killed: remove their half-made
    copies and put back a previous version a ``--force`` swap had moved aside. Only entries
    named exactly like :func:`temp_folder` names, for this host and a dead process, are touched."""
    if not raw_dir.is_dir():
        return
    for entry in sorted(raw_dir.iterdir()):
        m = _TEMP_NAME.match(entry.name)
        if m is None or m["host"] != _HOST or _pid_alive(int(m["pid"])):
            continue
        dest = entry.with_name(m["name"])
        try:
            if m["kind"] == "old" and not (dest.exists() or dest.is_symlink()):
                os.rename(entry, dest)
                log.warning("restored %s from %s, moved aside by an interrupted `data add --force`",
                            dest, entry.name)
            else:
                _remove(entry)
                log.warning("removed %s: left by an interrupted `data add` (process %s is gone)",
                            entry, m["pid"])
        except OSError as exc:  # leftovers must not block adding a dataset
            log.warning("%s: left by an interrupted `data add`, could not clean it up: %s", entry, exc)


def _copy_ignore(seen: SeenFolders) -> Callable[[str, list[str]], set[str]]:
    """copytree's ``ignore``: the usual junk plus folders already copied through another path
    (a symlink loop would otherwise be copied until the path is too long)."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        junk = _COPY_IGNORE(folder, names)
        return junk | seen.repeats(folder, [n for n in names if n not in junk])
    return ignore


def install_dataset(src: Path, dest: Path, link: bool, force: bool,
                    check: Callable[[Path], None]) -> list[Rejection]:
    """Copy (or symlink) ``src`` to ``dest`` via a temporary sibling that ``check`` must accept
    before it is renamed into place; on any failure the temporary sibling is removed and
    ``dest`` is untouched. Returns the source folders not copied because they were reached a
    second time through a symlink."""
    if dest.exists() or dest.is_symlink():
        if not force:
            raise click.ClickException(
                f"{dest}: dataset '{dest.name}' already exists; use --force to replace it"
            )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_folder(dest, "new")
    old = temp_folder(dest, "old")
    seen = SeenFolders(src)
    _remove(tmp)
    try:
        if link:
            os.symlink(src, tmp, target_is_directory=True)
        else:
            shutil.copytree(src, tmp, symlinks=False, ignore=_copy_ignore(seen))
        check(tmp)
        if dest.exists() or dest.is_symlink():
            _remove(old)
            os.rename(dest, old)
        try:
            tmp.rename(dest)
        except OSError:
            if old.exists() or old.is_symlink():
                old.rename(dest)  # put the previous version back
            raise
    except BaseException:
        _remove(tmp)
        raise
    _remove(old)
    return seen.rejections


def is_dvc_repo(root: Path) -> bool:
    return (root / ".dvc").is_dir()


def _dvc_skip_reason(no_dvc: bool, link: bool, root: Path, dest: Path) -> str | None:
    """Why `dvc add` will not run on ``dest`` (the line printed instead); None when it will."""
    if no_dvc:
        return "--no-dvc: not tracked by DVC"
    if link:
        return "--link: the data lives outside the repository, not tracked by DVC"
    if not is_dvc_repo(root):
        return (f"{root}: not a DVC repository (no .dvc/); skipped `dvc add` "
                f"(run `dvc init` and `dvc add {_rel(dest, root)}` to version it)")
    # The copy will be a folder in dest's parent (dest itself may still be an old --link symlink).
    if not (dest.parent.resolve() / dest.name).is_relative_to(root.resolve()):
        return f"{dest}: outside the repository {root}; skipped `dvc add`"
    return None


def dvc_add(path: Path, root: Path) -> str:
    """``dvc add`` ``path`` inside the DVC repository ``root``; returns the .dvc file name."""
    rel = path.relative_to(root)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dvc", "add", "-q", rel.as_posix()], cwd=root,
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise click.ClickException(
            f"{path}: `dvc add` failed (exit {proc.returncode}):\n{tail}\n"
            f"The data is in place; fix the problem, then run `dvc add {rel.as_posix()}` "
            f"and `fer-xai data add {path.name} {rel.as_posix()} --no-dvc` to register it."
        )
    return f"{rel.as_posix()}.dvc"


def register_dataset(params_file: Path, name: str, adapter: str, options: dict[str, Any]) -> str:
    """Append/update ``{name, adapter, options}`` in ``data.datasets``, keeping comments.

    Returns ``"added"`` or ``"updated"``. The file is validated after the edit and restored
    when the result is not a valid configuration."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    from ..config import DataParams, ParamsError, load_params

    ry = YAML(typ="rt")
    ry.preserve_quotes = True
    ry.indent(mapping=2, sequence=4, offset=2)
    ry.width = 4096
    # ruamel's round-trip dumper writes None as an empty value; keep params.yaml's `null`.
    ry.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    original = params_file.read_text()
    doc = ry.load(original)
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise click.ClickException(f"{params_file}: top level is not a mapping; cannot register '{name}'")
    data = doc.get("data")
    if data is None:
        data = doc["data"] = CommentedMap()
    datasets = data.get("datasets")
    if datasets is None:
        # Keep the effective default list (the embedded synthetic set) when the key is new.
        datasets = data["datasets"] = CommentedSeq()
        for entry in DataParams().datasets:
            datasets.append(CommentedMap(entry.model_dump()))
    entry = CommentedMap()
    entry["name"] = name
    entry["adapter"] = adapter
    opts = CommentedMap(options)
    opts.fa.set_flow_style()
    entry["options"] = opts
    status = "added"
    for i, existing in enumerate(datasets):
        if isinstance(existing, dict) and existing.get("name") == name:
            existing["adapter"] = adapter
            existing["options"] = opts
            status = "updated"
            break
    else:
        if len(datasets) and isinstance(datasets[-1], dict):
            _move_trailing_blank_lines(datasets[-1], entry)
        datasets.append(entry)
    buf = io.StringIO()
    ry.dump(doc, buf)
    tmp = params_file.with_name(f".{params_file.name}.tmp")
    tmp.write_text(buf.getvalue())
    os.replace(tmp, params_file)
    try:
        load_params(params_file)
    except ParamsError as exc:
        params_file.write_text(original)
        raise click.ClickException(f"{params_file}: registering '{name}' made it invalid, left unchanged:\n{exc}") from exc
    return status


def _move_trailing_blank_lines(prev: Any, new: Any) -> None:
    """ruamel keeps the blank lines that follow a block on its last key's comment token; move
    them to the appended entry so the blank line stays before the next top-level section."""
    from ruamel.yaml.tokens import CommentToken

    try:
        last_key = list(prev.keys())[-1]
        tok = prev.ca.items.get(last_key, [None, None, None, None])[2]
    except (AttributeError, IndexError):
        return
    if tok is None or not isinstance(tok.value, str):
        return
    kept = tok.value.rstrip("\n") + "\n"
    extra = len(tok.value) - len(kept)
    if extra <= 0:
        return
    tok.value = kept
    new_last = list(new.keys())[-1]
    new.ca.items[new_last] = [None, None, CommentToken("\n" * (extra + 1), tok.start_mark, None), None]


def _params_file(obj) -> Path:
    from ..config import params_path

    return Path(obj.params_file) if obj.params_file is not None else params_path()


# ----------------------------------------------------------------------------- CLI


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
    if not _NAME.match(name):
        raise click.BadParameter(f"{name!r}: use letters, digits, '_', '-' or '.'", param_hint="NAME")
    params = obj.params
    src = Path(os.path.abspath(path.expanduser()))
    if not src.exists():
        raise click.ClickException(f"{src}: no such folder")
    if not src.is_dir():
        raise click.ClickException(f"{src}: not a folder (unpack archives first)")
    raw_dir = resolve(params.data.raw_dir)
    dest = raw_dir / name
    user_options = parse_options(option_pairs)
    scan_options = {"include_neutral": params.data.include_neutral, **user_options}
    clean_stale_temps(raw_dir)
    root = repo_root()
    skip_dvc = _dvc_skip_reason(no_dvc, link, root, dest)

    in_place = dest.exists() and src.resolve() == dest.resolve()
    if not in_place:
        if (dest.exists() or dest.is_symlink()) and not force:
            raise click.ClickException(
                f"{dest}: dataset '{name}' already exists; use --force to replace it"
            )
        if dest.resolve().is_relative_to(src.resolve()):
            raise click.ClickException(f"{src}: contains the destination {dest}; pass the dataset folder itself")
        if src.resolve().is_relative_to(dest.resolve()) and dest.exists():
            raise click.ClickException(f"{src}: is inside the existing dataset folder {dest}")

    # 1. Check the source before anything is written.
    scan = _scan(src, name, adapter, scan_options)
    _require_usable(scan, src)
    chosen = scan.adapter
    click.echo(f"{display_name(src)}: {len(scan.records)} usable images (adapter {chosen})")

    def check(copy: Path) -> None:
        _require_usable_copy(copy, name, chosen, scan_options, src, dest)
        if skip_dvc is None:
            _require_dvc_names(copy, src)

    # 2. Copy / link through a temporary folder, checked before it is renamed into place.
    skipped: list[Rejection] = []
    if in_place:
        if skip_dvc is None:
            _require_dvc_names(dest, src)
        click.echo(f"{dest}: already in place, not copied")
    else:
        skipped = install_dataset(src, dest, link=link, force=force, check=check)
        click.echo(f"{'linked' if link else 'copied'} to {dest}")

    # 3. Validate the installed copy and write the report.
    final = _scan(dest, name, chosen, scan_options)
    final.rejections.extend(skipped)  # the copy has no loops left; the source had them
    report = build_report(final, name, dest, user_options, source=None if in_place else src, linked=link)
    report_path = write_json_atomic(raw_dir / f"{name}.validation.json", report)
    print_summary(report)
    click.echo(f"validation report: {report_path}")

    # 4. Version with DVC.
    if skip_dvc is not None:
        click.echo(skip_dvc)
    else:
        dvc_file = dvc_add(dest, root)
        click.echo(f"dvc add: wrote {dvc_file} (commit it: git add {dvc_file} "
                   f"{_rel(dest.parent / '.gitignore', root)})")

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
    scan = _scan(root, name, chosen, {"include_neutral": params.data.include_neutral, **user_options})
    report = build_report(scan, name, root, user_options)
    report_path = write_json_atomic(raw_dir / f"{name}.validation.json", report)
    print_summary(report)
    click.echo(f"validation report: {report_path}")
    if entry is None:
        click.echo(f"note: '{name}' is not registered in data.datasets (fer-xai data add {name} {root} --no-dvc)")
    _require_usable(scan, root)


@cli.command("adapters")
def adapters() -> None:
    """List the dataset adapters, their layouts and options."""
    from ..datasets import AUTO_ORDER

    for name, ad in ADAPTERS.items():
        auto = "" if name in AUTO_ORDER else "  (never auto-detected)"
        click.echo(f"{name}{auto}\n  layout: {ad.layout}")
        for key, (default, help_) in ad.all_options().items():
            click.echo(f"  -o {key}={default!r}: {help_}")

"""Installing a dataset for ``fer-xai data add``: copy (or symlink) it to ``<data.raw_dir>/NAME``
without ever leaving a half-written dataset, and version the copy with ``dvc add``.

The copy is made in ``.NAME.new-HOST-PID.tmp`` and renamed into place only once a check accepts
it; a ``--force`` swap moves the previous version to ``.NAME.old-HOST-PID.tmp`` meanwhile.
``.dvcignore``'s ``**/.*.tmp`` keeps both out of DVC's hash of ``data/raw`` (a ``prepare``
dependency), and the next ``data add`` removes those of dead processes of this host (or puts a
swapped-out previous version back). Folders reached twice through symlinks (loops) are copied
once and reported.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..processes import pid_alive
from .base import Rejection, SeenFolders
from .validation import DatasetAddError, rel, require_dvc_names, require_usable_copy

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_COPY_IGNORE = shutil.ignore_patterns(".git", ".dvc", "__MACOSX", ".DS_Store", "Thumbs.db")

# Temporary folders next to the dataset: .NAME.{new,old}-HOST-PID.tmp. The host is part of the
# name so that a data/raw shared between machines (or containers) is only cleaned by the host
# whose process IDs the name refers to.
_HOST = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname().split(".")[0]) or "localhost"
_TEMP_NAME = re.compile(r"^\.(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)"  # a dataset name (see _NAME)
                        r"\.(?P<kind>new|old)-(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.tmp$")


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a dataset (its folder, its .dvc file, its temporary folders)."""
    return _NAME.match(name) is not None


def source_folder(path: Path) -> Path:
    """``path`` made absolute; it must be an existing folder."""
    src = Path(os.path.abspath(path.expanduser()))
    if not src.exists():
        raise DatasetAddError(f"{src}: no such folder")
    if not src.is_dir():
        raise DatasetAddError(f"{src}: not a folder (unpack archives first)")
    return src


def check_destination(src: Path, dest: Path, force: bool) -> bool:
    """Whether ``src`` already is ``dest`` (nothing to copy); refuses to overwrite ``dest``
    without ``force`` and a source and destination inside one another."""
    if dest.exists() and src.resolve() == dest.resolve():
        return True
    if (dest.exists() or dest.is_symlink()) and not force:
        raise DatasetAddError(f"{dest}: dataset '{dest.name}' already exists; use --force to replace it")
    if dest.resolve().is_relative_to(src.resolve()):
        raise DatasetAddError(f"{src}: contains the destination {dest}; pass the dataset folder itself")
    if src.resolve().is_relative_to(dest.resolve()) and dest.exists():
        raise DatasetAddError(f"{src}: is inside the existing dataset folder {dest}")
    return False


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def temp_folder(dest: Path, kind: str, pid: int | None = None) -> Path:
    """The temporary sibling of ``dest``: ``kind`` ``new`` (the copy) or ``old`` (the version
    being replaced). Hidden and ending in ``.tmp``, so ``.dvcignore``'s ``**/.*.tmp`` covers it."""
    return dest.with_name(f".{dest.name}.{kind}-{_HOST}-{os.getpid() if pid is None else pid}.tmp")




def clean_stale_temps(raw_dir: Path) -> None:
    """Clean up after ``data add`` runs of this host that were killed: remove their half-made
    copies and put back a previous version a ``--force`` swap had moved aside. Only entries
    named exactly like :func:`temp_folder` names, for this host and a dead process, are touched."""
    if not raw_dir.is_dir():
        return
    for entry in sorted(raw_dir.iterdir()):
        m = _TEMP_NAME.match(entry.name)
        if m is None or m["host"] != _HOST or pid_alive(int(m["pid"])):
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


def copy_check(name: str, adapter: str, options: dict[str, Any], src: Path, dest: Path,
               dvc: bool) -> Callable[[Path], None]:
    """The check a copy must pass before :func:`install_dataset` renames it into place: it still
    has usable images and, when DVC will track it, only file names DVC can store."""
    def check(copy: Path) -> None:
        require_usable_copy(copy, name, adapter, options, src, dest)
        if dvc:
            require_dvc_names(copy, src)
    return check


def install_dataset(src: Path, dest: Path, link: bool, force: bool,
                    check: Callable[[Path], None]) -> list[Rejection]:
    """Copy (or symlink) ``src`` to ``dest`` via a temporary sibling that ``check`` must accept
    before it is renamed into place; on any failure the temporary sibling is removed and
    ``dest`` is untouched. Returns the source folders not copied because they were reached a
    second time through a symlink."""
    if (dest.exists() or dest.is_symlink()) and not force:
        raise DatasetAddError(f"{dest}: dataset '{dest.name}' already exists; use --force to replace it")
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


def dvc_skip_reason(no_dvc: bool, link: bool, root: Path, dest: Path) -> str | None:
    """Why `dvc add` will not run on ``dest`` (the line printed instead); None when it will."""
    if no_dvc:
        return "--no-dvc: not tracked by DVC"
    if link:
        return "--link: the data lives outside the repository, not tracked by DVC"
    if not is_dvc_repo(root):
        return (f"{root}: not a DVC repository (no .dvc/); skipped `dvc add` "
                f"(run `dvc init` and `dvc add {rel(dest, root)}` to version it)")
    # The copy will be a folder in dest's parent (dest itself may still be an old --link symlink).
    if not (dest.parent.resolve() / dest.name).is_relative_to(root.resolve()):
        return f"{dest}: outside the repository {root}; skipped `dvc add`"
    return None


def dvc_add(path: Path, root: Path) -> str:
    """``dvc add`` ``path`` inside the DVC repository ``root``; returns the .dvc file name."""
    rel_path = path.relative_to(root)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dvc", "add", "-q", rel_path.as_posix()], cwd=root,
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise DatasetAddError(
            f"{path}: `dvc add` failed (exit {proc.returncode}):\n{tail}\n"
            f"The data is in place; fix the problem, then run `dvc add {rel_path.as_posix()}` "
            f"and `fer-xai data add {path.name} {rel_path.as_posix()} --no-dvc` to register it."
        )
    return f"{rel_path.as_posix()}.dvc"

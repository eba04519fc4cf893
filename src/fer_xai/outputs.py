"""Output safety: a stage replaces only what it wrote itself.

Every stage output folder is written through :func:`staged_dir`: the new contents are built in a
hidden sibling, marked with :data:`MARKER`, and swapped in only on success. Before any work, and
again just before the swap, :meth:`OutputGuard.check` refuses a target that the stage did not make
or that holds something else the project needs: the project root or a folder above it, the home
folder, ``/``, the raw data (``data.raw_dir``; only synth's own folder may live there), another
stage's output, and an existing non-empty folder without the marker.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import FerXaiError
from .paths import repo_root
from .processes import pid_alive

# Written into every folder staged_dir makes. Its content is fixed (no time, no pid) so folders
# that DVC tracks hash the same on every run.
MARKER = ".fer-xai-output"


class UnsafeOutputError(FerXaiError, ValueError):
    """An output path that a stage must not replace; the message names the key and the path."""


def _norm(path: str | os.PathLike) -> Path:
    # Resolve symlinks of the existing part so "x/../data/raw" and links cannot dodge the checks.
    return Path(os.path.abspath(path)).resolve(strict=False)


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def place_reason(path: Path, raw_dir: Path | None, allow_in_raw: bool) -> str | None:
    """Why no stage may write ``path``, from the path alone: the root, the project, home, raw data."""
    path = _norm(path)
    root = _norm(repo_root())
    if path == Path(path.anchor):
        return "is the filesystem root"
    if _is_within(root, path):
        return f"is the project root {root} or a folder above it"
    home = _norm(Path.home())
    if _is_within(home, path):
        return f"is the home folder {home} or a folder above it"
    if raw_dir is not None:
        raw = _norm(raw_dir)
        if _is_within(raw, path):
            return f"is data.raw_dir ({raw}) or a folder above it: every dataset would be replaced"
        if _is_within(path, raw) and not allow_in_raw:
            return f"lies inside data.raw_dir ({raw}), where only synth writes"
    return None


def overlap_reason(path: Path, others: Mapping[str, Path]) -> str | None:
    """Why ``path`` would destroy another stage's output: it is, holds or lies inside one."""
    path = _norm(path)
    for other_key, other in others.items():
        other = _norm(other)
        if _is_within(path, other) or _is_within(other, path):
            return f"overlaps {other_key} ({other}), another stage's output"
    return None


@dataclass(frozen=True)
class OutputGuard:
    """What one stage's output folder must not be; built by :meth:`fer_xai.config.Params.output_guard`.

    ``key`` names the setting or option the path came from (``masks.out_dir``, ``--out``) so the
    error says what to change. ``known_names``: file names the stage writes into a folder that DVC
    restores without the marker (its outs are single files, as in ``models/<m>/fold<k>``); a folder
    holding only those is the stage's own.
    """

    owner: str
    key: str
    others: Mapping[str, Path] = field(default_factory=dict)
    raw_dir: Path | None = None
    allow_in_raw: bool = False
    known_names: frozenset[str] = frozenset()

    def with_known_names(self, names: Iterable[str]) -> OutputGuard:
        return OutputGuard(self.owner, self.key, self.others, self.raw_dir, self.allow_in_raw,
                           frozenset(names))

    def check(self, path: str | os.PathLike) -> Path:
        """Raise :class:`UnsafeOutputError` unless ``path`` is safe to replace; return it."""
        path = Path(path)
        reason = (place_reason(path, self.raw_dir, self.allow_in_raw) or overlap_reason(path, self.others)
                  or self._state_reason(path))
        if reason is not None:
            raise UnsafeOutputError(f"{self.key} = {path}: refusing to write the {self.owner} output there: "
                                    f"the folder {reason}. Choose another path.")
        return path

    def _state_reason(self, path: Path) -> str | None:
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            return "exists and is not a folder"
        if not path.is_dir() or is_own(path):
            return None
        entries = {p.name for p in path.iterdir()}
        if not entries or (self.known_names and entries <= self.known_names):
            return None
        foreign = sorted(entries - self.known_names)
        return (f"is not empty and was not written by fer-xai (no {MARKER} file); "
                f"it holds e.g. {foreign[0]!r}")


def is_own(folder: Path) -> bool:
    """Whether ``folder`` was made by :func:`staged_dir`."""
    return (folder / MARKER).is_file()


def _sibling(out: Path, kind: str, pid: int) -> Path:
    # ".<name>.<pid>.tmp" matches .gitignore's *.tmp and .dvcignore's **/.*.tmp.
    return out.with_name(f".{out.name}.{pid}.{kind}")


def _clean_stale_siblings(out: Path) -> None:
    """Clean up after killed staged_dir runs (only folders with the marker): put back previous
    results that a swap had moved aside when nothing replaced them, remove the rest."""
    if not out.parent.is_dir():
        return
    for kind in ("old", "tmp"):  # "old" first: it may be the only copy of the previous results
        for cand in sorted(out.parent.glob(f".{out.name}.*.{kind}")):
            pid = cand.name[len(out.name) + 2:-len(kind) - 1]
            if not (pid.isdigit() and not pid_alive(int(pid)) and cand.is_dir() and is_own(cand)):
                continue
            if kind == "old" and not out.exists():
                os.replace(cand, out)
            else:
                shutil.rmtree(cand, ignore_errors=True)


def _fresh_staging(out: Path, kind: str) -> Path:
    path = _sibling(out, kind, os.getpid())
    if path.exists():
        if not (path.is_dir() and is_own(path)):
            raise UnsafeOutputError(f"{path}: a staging path of fer-xai is taken by something it did not "
                                    "write; move it away")
        shutil.rmtree(path)
    return path


@contextlib.contextmanager
def staged_dir(out_dir: str | os.PathLike, guard: OutputGuard) -> Iterator[Path]:
    """Write a stage's output folder in a hidden sibling and swap it in only on success.

    ``guard`` is checked before the caller's work starts and again before the swap. On any
    exception the partial folder is removed and ``out_dir`` keeps its previous contents. Only a
    folder that passes the guard (made by staged_dir, empty, or holding only the stage's own files)
    is ever replaced.
    """
    out = guard.check(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_siblings(out)
    tmp = _fresh_staging(out, "tmp")
    tmp.mkdir()
    (tmp / MARKER).write_text(f"written by fer-xai {guard.owner}\n")
    try:
        yield tmp
        guard.check(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not out.exists():
        os.replace(tmp, out)
        return
    # Rename-then-delete: the old results stay whole until the new ones are in place.
    old = _fresh_staging(out, "old")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError as exc:  # put the previous results back rather than leave nothing
        os.replace(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(errno.EIO, f"{out}: could not swap in the new output: {exc}") from exc
    shutil.rmtree(old, ignore_errors=True)


def check_layout(outputs: Mapping[str, Path], raw_dir: Path, synth_key: str) -> list[str]:
    """Problems of a set of stage outputs ({key: path}) by path alone, for the params loader."""
    problems = []
    for key, path in outputs.items():
        reason = place_reason(path, raw_dir, allow_in_raw=key == synth_key)
        if reason is not None:
            problems.append(f"{key} = {path}: {reason}")
    if problems:  # a misplaced output overlaps everything below it: its own reason says enough
        return problems
    keys = list(outputs)
    for i, key in enumerate(keys):
        later = {k: outputs[k] for k in keys[i + 1:] if _stage(k) != _stage(key)}
        reason = overlap_reason(outputs[key], later)
        if reason is not None:
            problems.append(f"{key} = {outputs[key]}: {reason}")
    return problems


def _stage(key: str) -> str:
    return key.split(".", 1)[0]

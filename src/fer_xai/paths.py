"""Where the project lives (every relative path in params.yaml is relative to the repo root) and
how a file in it is replaced: atomically, through a temporary sibling."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def repo_root() -> Path:
    """The project root: ``$FER_XAI_ROOT``, else the nearest parent with ``params.yaml``, else cwd."""
    env = os.environ.get("FER_XAI_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for cand in (here, *here.parents):
        if (cand / "params.yaml").is_file() and (cand / "dvc.yaml").is_file():
            return cand
    return here


def resolve(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p if p.is_absolute() else repo_root() / p


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, fsync: bool = False,
                       check: Callable[[Path], object] | None = None) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling renamed over it, so readers see the
    old file or the new one, never a half-written one.

    The temporary file is hidden, ends in ``.tmp`` (``.dvcignore``'s ``**/.*.tmp``) and has a
    name of its own, so concurrent writers of one file never write into each other's. ``check``,
    when given, is called with the complete temporary file; if it raises, ``path`` is left as it
    was. ``fsync`` also flushes the data and the rename to disk (survives a power cut)."""
    return _write_atomic(Path(path), bytes(data), None, fsync, check)


def write_text_atomic(path: str | os.PathLike, text: str, *, encoding: str | None = None,
                      fsync: bool = False, check: Callable[[Path], object] | None = None) -> Path:
    """:func:`write_bytes_atomic` for text, encoded as ``Path.write_text`` would."""
    return _write_atomic(Path(path), text, encoding, fsync, check)


def _write_atomic(path: Path, data: str | bytes, encoding: str | None, fsync: bool,
                  check: Callable[[Path], object] | None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = isinstance(data, bytes)
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            # Exclusive create ("x"), with the umask-based mode a plain write gives the file
            # (tempfile.mkstemp's 0600 would end up on the replaced file).
            fh = open(tmp, "xb" if binary else "x", encoding=None if binary else io.text_encoding(encoding))
            break
        except FileExistsError:
            continue
    try:
        with fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync and os.name == "posix":
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def write_json_atomic(path: str | os.PathLike, data: object) -> Path:
    """``data`` as indented JSON with sorted keys, through :func:`write_text_atomic`."""
    import json

    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

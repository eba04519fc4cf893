"""Edit ``params.yaml`` in place, keeping its comments: the one writer of ``params.yaml``.

``fer-xai data add`` (registering a dataset) and ``fer-xai profile apply`` both go through
:func:`edit_params`: load the file round-trip with ruamel.yaml (comments, blank lines, quotes and
number formats kept), apply the change to the document, validate the result with the same
loader every stage uses (:func:`fer_xai.config.load_params`), and only then replace the file
atomically. A candidate that fails validation leaves the file byte-identical.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from .config import ParamsError, load_params
from .errors import FerXaiError
from .paths import write_text_atomic

T = TypeVar("T")


class ParamsEditError(FerXaiError):
    """``params.yaml`` could not be edited; the file is unchanged."""

    def __init__(self, path: Path, message: str):
        self.path = path
        super().__init__(message)


class NotAMappingError(ParamsEditError):
    def __init__(self, path: Path):
        super().__init__(path, f"{path}: top level is not a mapping")


class InvalidParamsError(ParamsEditError):
    """The edited document is not a valid configuration; ``problem`` is the loader's message."""

    def __init__(self, path: Path, problem: str):
        self.problem = problem
        super().__init__(path, f"{path}: the edit would make it invalid, left unchanged:\n{problem}")


def round_trip_yaml() -> YAML:
    """The ruamel.yaml set-up that reads and writes ``params.yaml`` (and profiles) unchanged
    apart from the edit: params.yaml's indentation, long lines kept on one line, ``null``."""
    ry = YAML(typ="rt")
    ry.preserve_quotes = True
    ry.indent(mapping=2, sequence=4, offset=2)
    ry.width = 4096
    # ruamel's round-trip dumper writes None as an empty value; keep params.yaml's `null`.
    ry.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return ry


def dump(ry: YAML, node: Any) -> str:
    buf = io.StringIO()
    ry.dump(node, buf)
    return buf.getvalue()


def edit_params(path: Path, change: Callable[[CommentedMap], T]) -> T:
    """Apply ``change`` to ``path``'s round-trip document and write the result, validated first.

    Returns what ``change`` returns. Raises :class:`NotAMappingError` when the file's top level
    is not a mapping and :class:`InvalidParamsError` when the edited document is not a valid
    configuration; in both cases (and when ``change`` raises) the file is untouched."""
    ry = round_trip_yaml()
    doc = ry.load(path.read_text())
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise NotAMappingError(path)
    result = change(doc)
    write_validated(path, dump(ry, doc))
    return result


def write_validated(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` once :func:`fer_xai.config.load_params` accepts it."""

    def check(candidate: Path) -> None:
        # The loader reads the complete temporary file: exactly the bytes that will replace path.
        try:
            load_params(candidate)
        except ParamsError as exc:
            raise InvalidParamsError(path, str(exc).replace(str(candidate), str(path))) from exc

    write_text_atomic(path, text, check=check)


# ----------------------------------------------------------------------------- blank lines
# ruamel keeps the blank lines that follow a block on the comment token of the block's last key:
# appending after that block must move them, or the blank line before the next section would end
# up between the old last entry and the new one.


def _last_key_token(node: Any) -> tuple[Any, Any]:
    try:
        last = list(node.keys())[-1]
        items = node.ca.items.get(last)
    except (AttributeError, IndexError):
        return None, None
    return last, (items[2] if items and len(items) > 2 else None)


def trailing_blank_lines(node: Any, remove: bool = False) -> str:
    """The blank lines after mapping ``node`` (``"\\n"`` per line, ``""`` if none); ``remove``
    also takes them off ``node``."""
    _, tok = _last_key_token(node)
    if tok is None or not isinstance(tok.value, str):
        return ""
    kept = tok.value.rstrip("\n") + "\n"
    tail = "\n" * (len(tok.value) - len(kept))
    if remove and tail:
        tok.value = kept
    return tail


def set_trailing_blank_lines(node: Any, tail: str) -> None:
    """Make ``tail`` (from :func:`trailing_blank_lines`) follow mapping ``node``."""
    last, tok = _last_key_token(node)
    if last is None:
        return
    if tok is not None and isinstance(tok.value, str):
        if not tok.value.endswith("\n" + tail):
            tok.value = tok.value.rstrip("\n") + "\n" + tail
        return
    # The mark's column is ignored for a comment that starts with a line break.
    node.ca.items[last] = [None, None, CommentToken("\n" + tail, CommentMark(0), None), None]

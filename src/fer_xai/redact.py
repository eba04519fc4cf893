"""Hide credentials in URIs before they are printed, logged, tracked or written into a report.

The tracking store (``MLFLOW_TRACKING_URI``) and the Optuna storage (``tune.storage``) are often
database or server URLs with a password in them; the project shows them in logs, MLflow params and
the HTML report. ``redact_uri`` masks one URI, ``redact`` every URI inside nested params or text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

MASK = "***"

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# Where a URI inside free text (a log line, a YAML dump, an HTML cell) starts and ends.
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# Query or fragment keys whose values are secrets (normalized: lower case, '-' as '_').
_SECRET_KEY_PARTS = ("password", "passwd", "pwd", "secret", "token", "access_key", "accesskey", "api_key",
                     "apikey", "credential", "signature")
_SECRET_KEYS = {"sig", "key"}  # Azure SAS signatures, API keys
_QUERY_START = re.compile(r"[?#]")
_PARAM_SEPARATORS = re.compile(r"([?#&;])")


def redact_uri(uri: str) -> str:
    """``uri`` with the password of its userinfo and any secret query or fragment values masked.

    ``scheme://user:pass@host/db?token=t`` -> ``scheme://user:***@host/db?token=***``; anything
    that is not a ``scheme://`` URI, or has no credentials, comes back unchanged.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return uri
    userinfo, at, location = _split_userinfo(rest)
    return f"{scheme}://{_mask_password(userinfo)}{at}{_mask_params(location)}"


def redact(obj: Any) -> Any:
    """A copy of ``obj`` (nested dicts, lists, tuples, strings) with every URI in it redacted."""
    if isinstance(obj, str):
        return _URI_IN_TEXT.sub(lambda m: redact_uri(m.group()), obj)
    if isinstance(obj, Mapping):
        return {k: redact(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact(v) for v in obj)
    return obj


class RedactingFormatter(logging.Formatter):
    """Log lines with credentials hidden, whatever carried them: message, arguments, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _split_userinfo(rest: str) -> tuple[str, str, str]:
    """``(userinfo, "@", host-and-rest)``, or ``("", "", rest)`` without userinfo.

    Not ``urllib.parse.urlsplit``: it ends the authority at the first '/', while SQLAlchemy (which
    opens both stores) takes an unencoded '/' as part of the password, so the userinfo here runs
    to the last '@' before the query or fragment. The price: in ``http://host:80/a/@b`` the path
    is masked as if it were a password, the safe side to err on. ``scheme:///path`` has no
    authority at all.
    """
    if rest.startswith("/"):
        return "", "", rest
    head = _QUERY_START.split(rest, maxsplit=1)[0]
    userinfo, at, _ = head.rpartition("@")
    if not at:
        return "", "", rest
    return userinfo, at, rest[len(userinfo) + 1:]


def _mask_password(userinfo: str) -> str:
    user, colon, password = userinfo.partition(":")
    return f"{user}:{MASK}" if colon and password else userinfo


def _mask_params(location: str) -> str:
    """Mask secret ``key=value`` pairs of the query and fragment; the host and path stay as they are."""
    pieces = _PARAM_SEPARATORS.split(location)  # [host/path, sep, param, sep, param, ...]
    return "".join(pieces[:1] + [_mask_param(p) if i % 2 else p for i, p in enumerate(pieces[1:])])


def _mask_param(param: str) -> str:
    key, eq, value = param.partition("=")
    return f"{key}={MASK}" if eq and value and _is_secret_key(key) else param


def _is_secret_key(key: str) -> bool:
    name = unquote_plus(key).lower().replace("-", "_")
    return name in _SECRET_KEYS or any(part in name for part in _SECRET_KEY_PARTS)

"""Where the project lives: every relative path in params.yaml is relative to the repo root."""

from __future__ import annotations

import os
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


def metrics_path(stage: str) -> Path:
    """``metrics/<stage>.json``: the small, uncached metrics files dvc.yaml declares."""
    return repo_root() / "metrics" / f"{stage}.json"


def write_json_atomic(path: str | os.PathLike, data: object) -> Path:
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path

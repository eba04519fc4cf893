"""What ran where: the table printed at the end and ``<executor.out_dir>/<run id>/run.json``
(rewritten after every stage, so a killed driver leaves what it had learnt)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import layout
from ..paths import write_text_atomic
from .scheduler import StageOutcome


def write_record(run_dir: Path, header: dict[str, Any], outcomes: Sequence[StageOutcome]) -> Path:
    path = run_dir / layout.EXECUTOR_RECORD
    write_text_atomic(path, json.dumps({**header, "stages": [o.to_json() for o in outcomes]}, indent=2) + "\n")
    return path


def _where(task: dict[str, Any]) -> str:
    if not task:
        return "-"
    node = task.get("node_id", "")[:8]
    gpus = f" gpu {','.join(task['gpu_ids'])}" if task.get("gpu_ids") else ""
    return f"{task.get('hostname', '?')} {task.get('node_ip', '?')} node {node}{gpus}"


def format_table(outcomes: Sequence[StageOutcome]) -> str:
    rows = [("stage", "status", "where", "seconds")]
    for o in outcomes:
        t = o.task
        secs = f"{t['ended'] - t['started']:.1f}" if t.get("ended") and t.get("started") else "-"
        rows.append((o.stage, o.status, _where(t), secs))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    problems = [f"{o.stage}: {o.detail}" for o in outcomes if o.detail]
    return "\n".join(lines + ([""] + problems if problems else []))

"""Whether a process still runs: the one rule that stale staging folders, killed copies and
orphaned MLflow runs are judged by."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host; when unsure, True (so nothing is removed)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process / a number no pid can be
    return True

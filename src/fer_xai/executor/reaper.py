"""Processes that die with their starter: a command in a process group of its own, and a tiny
reaper that kills that group when the starter ends in any way (even SIGKILL), because the reaper
reads a pipe that only the starter holds open.

The reaper is a grandchild (its shell forks it and exits): Ray, when a worker ends, kills the
worker's child processes, and a reaper among them would die before doing its work."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

# Forks a subshell that waits for end-of-file on the pipe (stdin, kept as fd 3: a background job's
# stdin is /dev/null), then kills the process group named by the argument; the shell itself exits.
_REAPER = 'exec 3<&0; (read _ignored <&3; kill -9 -"$1" 2>/dev/null) >/dev/null 2>&1 & exit 0'


@dataclass
class Guarded:
    proc: subprocess.Popen
    reaper: subprocess.Popen

    def wait(self) -> int:
        return self.proc.wait()

    def stop(self) -> None:
        """Kill the command's group (whatever is left of it) and collect the command."""
        if self.reaper.stdin and not self.reaper.stdin.closed:
            self.reaper.stdin.close()
        self.proc.wait()


def start_guarded(args: Sequence[str], **popen) -> Guarded:
    """``subprocess.Popen(args, **popen)`` in a new session, with its reaper (also in a new session,
    so that a signal to the starter's process group does not take the reaper along)."""
    proc = subprocess.Popen(list(args), start_new_session=True, **popen)
    reaper = subprocess.Popen(["/bin/sh", "-c", _REAPER, "fer-xai-reaper", str(proc.pid)], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    reaper.wait()  # its shell exits at once, leaving the forked reaper behind
    return Guarded(proc, reaper)

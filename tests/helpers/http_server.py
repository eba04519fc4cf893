"""A server command on a free loopback port for e2e tests: started in its own process group,
waited for until a URL answers 200, and the whole group killed afterwards."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers.dvc_project import kill_group


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(cmd: list[str], ready_url: str, log: Path, cwd: Path, env: dict[str, str],
            timeout: float = 180) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` (output to ``log``) until ``ready_url`` answers 200; fail with the log's tail if it
    exits or ``timeout`` seconds pass first."""
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{cmd[0]} {cmd[1]} did not come up (exit {proc.poll()}):\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        kill_group(proc)

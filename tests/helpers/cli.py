"""``fer-xai`` in-process for pipeline tests: one call, the project's params file, exit code checked."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from fer_xai.cli import main


def invoke(root: Path, *args: str, ok: bool = True) -> Result:
    """``fer-xai --params <root>/params.yaml ARGS``; with ``ok`` a non-zero exit fails the test with the output."""
    res = CliRunner().invoke(main, ["--params", str(root / "params.yaml"), *args])
    if ok:
        assert res.exit_code == 0, res.output + repr(res.exception)
    return res

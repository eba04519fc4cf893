"""Adapter from MLproject's flat string parameters to ``fer-xai [-S k=v ...] <stage>``."""

from __future__ import annotations

import shlex
import sys

from .cli import main as cli_main


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m fer_xai.mlproject")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--overrides", default="", help="space-separated KEY=VALUE pairs")
    ap.add_argument("stage_args", nargs=argparse.REMAINDER)
    ns = ap.parse_args(argv)
    args = ["--params", ns.params]
    for kv in shlex.split(ns.overrides):
        args += ["-S", kv]
    cli_main.main(args=args + ns.stage_args, prog_name="fer-xai", standalone_mode=True)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])

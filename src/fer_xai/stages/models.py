"""``fer-xai models``: list the model zoo with each network's parameter count (paper Table 1).

Every network is built at its native input size with random initialisation (no weight file is
needed or read, nothing is cached on disk) and ``model.count_params()`` is reported; Keras'
session is cleared after each one. Building all twelve on CPU takes about half a minute and
~1 GB of memory (SilNet alone has 185 M parameters). Does not read params.yaml.
"""

from __future__ import annotations

import csv
import io
import logging

import click

from ..models.zoo import NETWORKS, network

log = logging.getLogger(__name__)

COLUMNS = ("name", "input_size", "pretrained", "params")


def zoo_rows(ids: list[str] | None = None) -> list[dict]:
    """One row per network (``COLUMNS``), building each at its native size."""
    import keras

    from ..models.zoo import build_network

    specs = [network(i) for i in ids] if ids else list(NETWORKS.values())
    rows = []
    for spec in specs:
        built = build_network(spec.id, pretrained="none")
        rows.append({
            "name": spec.display_name,
            "input_size": spec.native_size,
            "pretrained": "yes" if spec.pretrained_default else "no",
            "params": int(built.model.count_params()),
        })
        del built
        keras.backend.clear_session()
    return rows


def format_rows(rows: list[dict], fmt: str) -> str:
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    cells = [list(COLUMNS)] + [
        [r["name"], str(r["input_size"]), r["pretrained"], f"{r['params']:,}"] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    right = {1, 3}  # numbers right-aligned
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


@click.command("models")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True,
              help="Output format.")
@click.option("--only", "only", multiple=True, metavar="ID",
              help="List only these networks (repeatable); default all twelve.")
def cli(fmt: str, only: tuple[str, ...]) -> None:
    """List the networks: name, native input size, ImageNet pre-training and parameter count."""
    rows = zoo_rows(list(only) or None)
    click.echo(format_rows(rows, fmt), nl=False)

"""The paper's table layouts (Tables 3, 4 and 5) built from the long ``ekman_table`` frame."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from .metrics import AVG, METRIC_LABELS

MODEL_AVG_LABEL = "Avg. (model)"
EXPR_AVG_LABEL = "Avg. (express.)"


def paper_table(table: pd.DataFrame, metrics: Sequence[str] = ("iou", "f1")) -> pd.DataFrame:
    """Rows = networks then ``Avg. (express.)``; columns ``<Expression> <Metric>`` for the six
    expressions then ``Avg. (model) <Metric>`` (paper Table 3 for IoU/F1, Table 4 for P/R)."""
    models = list(dict.fromkeys(table["model"]))
    models = [m for m in models if m != AVG] + ([AVG] if AVG in models else [])
    exprs = list(dict.fromkeys(table["expression"]))
    exprs = [e for e in exprs if e != AVG] + ([AVG] if AVG in exprs else [])
    idx = table.set_index(["model", "expression"])
    out = pd.DataFrame(index=pd.Index([EXPR_AVG_LABEL if m == AVG else m for m in models], name="model"))
    for expr in exprs:
        label = MODEL_AVG_LABEL if expr == AVG else expr
        for metric in metrics:
            out[f"{label} {METRIC_LABELS[metric]}"] = [
                idx.at[(m, expr), metric] if (m, expr) in idx.index else float("nan") for m in models
            ]
    return out


def best_worst(table: pd.DataFrame, metric: str, k: int = 3) -> pd.DataFrame:
    """Table 5: per expression, the ``k`` best and ``k`` worst networks by ``metric``.

    Columns ``expression,metric,rank,best_model,best_value,worst_model,worst_value``; rank 1 is
    the best (resp. worst). Ties are broken by network name; NaN cells are left out.
    """
    cells = table[(table["model"] != AVG) & (table["expression"] != AVG)]
    rows = []
    for expr in dict.fromkeys(cells["expression"]):
        sub = cells[cells["expression"] == expr][["model", metric]].dropna()
        kk = min(k, len(sub))
        best = sub.sort_values([metric, "model"], ascending=[False, True]).head(kk)
        worst = sub.sort_values([metric, "model"], ascending=[True, True]).head(kk)
        for r in range(kk):
            rows.append({"expression": expr, "metric": metric, "rank": r + 1,
                         "best_model": best.iloc[r]["model"], "best_value": float(best.iloc[r][metric]),
                         "worst_model": worst.iloc[r]["model"],
                         "worst_value": float(worst.iloc[r][metric])})
    return pd.DataFrame(rows, columns=["expression", "metric", "rank", "best_model", "best_value",
                                       "worst_model", "worst_value"])


def best_worst_layout(bw: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Paper Table 5 layout (header, rows): one row per expression, ``1.Net (0.1234) 2.Net ...``
    in a best and a worst column per metric."""
    metrics = list(dict.fromkeys(bw["metric"]))
    header = ["Expression"]
    for m in metrics:
        header += [f"Best ({METRIC_LABELS[m]})", f"Worst ({METRIC_LABELS[m]})"]
    lines = []
    for expr in dict.fromkeys(bw["expression"]):
        row = [expr]
        for m in metrics:
            sub = bw[(bw["expression"] == expr) & (bw["metric"] == m)].sort_values("rank")
            row.append(" ".join(f"{r.rank}.{r.best_model} ({r.best_value:.4f})" for r in sub.itertuples()))
            row.append(" ".join(f"{r.rank}.{r.worst_model} ({r.worst_value:.4f})" for r in sub.itertuples()))
        lines.append(row)
    return header, lines


def best_worst_markdown(bw: pd.DataFrame) -> str:
    """Paper Table 5 style: one row per expression, ``1.Net (0.1234) 2.Net ...`` per metric."""
    return markdown_table(*best_worst_layout(bw))


def _fmt(v, digits: int) -> str:
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence], digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table; floats with ``digits`` decimals (no extra dependency)."""
    head = "| " + " | ".join(map(str, header)) + " |"
    first = rows[0] if rows else []
    numeric = [i > 0 and isinstance(v, (int, float)) for i, v in enumerate(first)]
    sep = "|" + "|".join("---:" if num else "---" for num in numeric or [False] * len(header)) + "|"
    body = ["| " + " | ".join(_fmt(v, digits) for v in row) + " |" for row in rows]
    return "\n".join([head, sep, *body]) + "\n"


def frame_markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """Markdown of a frame whose index is the first column (e.g. :func:`paper_table`)."""
    header = [df.index.name or "", *df.columns]
    rows = [[idx, *(float(v) if isinstance(v, (int, float)) else v for v in vals)]
            for idx, vals in zip(df.index, df.itertuples(index=False))]
    return markdown_table(header, rows, digits)

"""``index.html`` of a new-images output folder: every image with its figure, predicted
expression, probability and top three, then the images without a usable face and why.

Self-contained: figures are referenced by their relative paths inside the folder, no script,
no remote resource; moving or zipping the folder keeps the page working.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..labels import DISPLAY_NAMES

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fer-xai explanations of {{ images }}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.4em 0.8em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { width: {{ thumb_px }}px; height: auto; }
.note { color: #555; max-width: 60em; }
</style>
</head>
<body>
<h1>Explanations of {{ images }}</h1>
<p>Model <code>{{ model_uri }}</code>, method {{ method }}: {{ rows | length }} of {{ n_images }} images
explained, {{ rejected | length }} rejected.</p>
<p class="note">Each figure shows the aligned face the network saw and, over it, the evidence the
{{ method }} explanation found for the predicted expression (the colour bar gives its values). A model
trained on the synthetic demo faces is not expected to read real photographs; one trained on real
faces (<code>fer-xai data add</code>) is.</p>
<h2>Images</h2>
<table id="images">
<tr><th>#</th><th>image</th><th>predicted</th><th>p</th><th>top three</th><th>figure</th></tr>
{% for r in rows %}
<tr>
<td class="num">{{ r.index }}</td><td>{{ r.path }}</td><td><b>{{ r.predicted }}</b></td>
<td class="num">{{ "%.3f" | format(r.probability) }}</td>
<td><ol>{% for name, p in r.top %}<li>{{ name }} {{ "%.3f" | format(p) }}</li>{% endfor %}</ol></td>
<td><a href="{{ r.figure }}"><img src="{{ r.figure }}" alt="explanation of {{ r.path }}"></a></td>
</tr>
{% endfor %}
</table>
<h2>Rejected images</h2>
{% if rejected %}
<table id="rejected">
<tr><th>image</th><th>reason</th><th>detail</th></tr>
{% for r in rejected %}
<tr><td>{{ r.path }}</td><td>{{ r.reason }}</td><td>{{ r.detail }}</td></tr>
{% endfor %}
</table>
{% else %}
<p id="rejected">None: every image showed a usable face.</p>
{% endif %}
</body>
</html>
"""
THUMB_PX = 600  # of the 800 px wide figures; the link opens the full size


@dataclass(frozen=True)
class ImageRow:
    index: int
    path: str
    figure: str  # relative to the page
    predicted: str
    probability: float
    top: Sequence[tuple[str, float]]


def row(index: int, path: str, figure: str, top: Sequence[tuple[str, float]]) -> ImageRow:
    """``top``: (expression, probability), most probable first, as :func:`fer_xai.explain.figure.top_classes`."""
    named = [(DISPLAY_NAMES.get(e, e), p) for e, p in top]
    return ImageRow(index, path, figure, named[0][0], named[0][1], named)


def index_html(rows: Sequence[ImageRow], rejected: Sequence[dict], *, images: str, model_uri: str, method: str,
               n_images: int) -> str:
    """The page; ``rejected``: dicts with path, reason and detail (rows of rejected.csv)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_TEMPLATE).render(
        rows=rows, rejected=[{k: r.get(k) or "" for k in ("path", "reason", "detail")} for r in rejected],
        images=images, model_uri=model_uri, method=method, n_images=n_images, thumb_px=THUMB_PX)

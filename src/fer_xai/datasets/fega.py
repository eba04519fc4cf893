"""FEGA (Facial Expression, Gender and Age; 51 subjects; one of the five datasets of
Gaya-Morey et al. 2024, arXiv:2401.11835). The set is not public.

**Best guess, not a documented layout.** No public description of FEGA's file naming could be
found (searched: documentation, web pages and public code, including the study's own
repository ``Xavi3398/ekman_expressions``, which ships no dataset loader). The adapter is
therefore a thin configuration of the generic ``tokens`` adapter, which accepts the usual ways
a small posed-expression set is organised:

* ``<root>/<subject>/<file with an expression word>``, e.g. ``FEGA/S01/S01_happy.jpg``
  (subject = the first folder below the root, because it is not a label);
* flat files ``<subject>_<expression>[_n].<ext>``, e.g. ``S01_anger_2.png`` (subject = the
  leading letters+digits of the name once the expression word is removed);
* ``<root>/<expression>/<files>`` (label from the folder).

Expression words are those of :func:`fer_xai.labels.normalize_label` (anger/angry, happy,
sad, surprise(d), ...), at least 3 letters long. Override with the options of ``tokens``:
``label_pattern`` (regex with a ``label`` group on the relative path, e.g.
``"_(?P<label>[A-Z]{2})\\."``), ``subject_pattern``/``subject_source`` and
``min_token_length``. Auto-detection only picks this adapter when the folder (or a direct
sub-folder) is named ``*fega*``. For any other layout use the ``folders`` adapter or write a
``manifest.csv`` for the ``csv`` adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .generic import TokensAdapter


class FegaAdapter(TokensAdapter):
    name = "fega"
    layout = ("BEST GUESS: folder named *FEGA* with <subject>/<..expression word..>.jpg or"
              " <subject>_<expression>.jpg files (see fer_xai.datasets.fega)")

    def matches(self, root: Path, **options: Any) -> bool:
        root = Path(root)
        named = "fega" in root.name.lower() or any(
            c.is_dir() and "fega" in c.name.lower() for c in root.iterdir()
        ) if root.is_dir() else False
        return named and super().matches(root, **options)

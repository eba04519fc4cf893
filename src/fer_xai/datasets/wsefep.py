"""WSEFEP (Warsaw Set of Emotional Facial Expression Pictures, Olszanowski et al. 2015,
doi:10.3389/fpsyg.2014.01516): 210 photographs of 30 displayers (14 men, 16 women), one per
expression (anger, disgust, fear, joy, sadness, surprise) plus neutral.

Distributed layout (as seen in public code that reads the set: a folder ``WSEFEP_v101_hq/``
holding the images and ``WSEFEP - norms & FACS.xlsx``; the CSV export of that sheet,
``WSEFEP - norms & FACS - Arkusz1.csv``, is in github.com/GreysonShafiei/GPT-4_Facial_Expressions
with all 210 rows): the file names carry **no label**; they are
``<Displayer ID>_<4-digit picture number>.jpg`` (``AD_7885.jpg``, ``MK1_0007.jpg``,
``MR2_1829.jpg``), and the label is the ``Display`` column of the norms
sheet, keyed by ``Picture ID`` (= the file name). Sheet columns: ``Displayer ID, Picture ID,
Male/ Female, Display, Agreement (%), Putity (0-1) [sic], Intensity (0-1), N, FACS``.

The adapter reads the norms sheet (``.xlsx`` read with the standard library, or ``.csv``),
found as the first file below the root whose name contains ``norms`` (option ``norms`` names
it explicitly) and indexes the images below the root (any sub-folder) by lower-cased file
name. Subject = ``Displayer ID``; meta keeps gender, agreement, purity, intensity, judges and
FACS codes. Images not in the sheet -> ``not_in_norms``; sheet rows without an image ->
``missing_file``. "joy" maps to happiness; neutral is dropped unless ``include_neutral``.

Without a norms sheet (e.g. a copy already sorted into ``<emotion>/`` folders) the adapter
falls back to the ``tokens`` adapter: label from a folder or a word in the name, subject
``^(?P<subject>[A-Za-z]+\\d?)_`` from the file name. Any other layout: ``folders`` or ``csv``.
"""

from __future__ import annotations

import csv
import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from ..images import is_image_name
from .base import Adapter, LayoutError, RawRecord, ScanResult, classify_label, walk_files
from .generic import TokensAdapter, _convert

NAME_PATTERN = re.compile(r"^(?P<subject>[A-Za-z]{2}\d?)_(?P<number>\d{3,5})\.(jpe?g|png|tiff?|bmp)$",
                          re.IGNORECASE)
FALLBACK_SUBJECT = r"^(?P<subject>[A-Za-z]{2}\d?)_"
_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


# --------------------------------------------------------------------------- sheet reading


def _col_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref.upper())
    n = 0
    for ch in letters.group(0) if letters else "A":
        n = n * 26 + (ord(ch) - 64)
    return n - 1


def read_xlsx_rows(path: Path) -> list[list[str]]:
    """Rows of the first worksheet of an .xlsx file as strings (standard library only)."""
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ET.fromstring(zf.read("xl/sharedStrings.xml"))
            for si in root.findall("m:si", _NS):
                shared.append("".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")))
        sheet = "xl/worksheets/sheet1.xml"
        if "xl/workbook.xml" in names and "xl/_rels/workbook.xml.rels" in names:
            wb = ET.fromstring(zf.read("xl/workbook.xml"))
            first = wb.find("m:sheets/m:sheet", _NS)
            rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
            if first is not None:
                rid = first.get(_REL_NS)
                for rel in rels:
                    if rel.get("Id") == rid:
                        target = rel.get("Target", "").lstrip("/")
                        sheet = target if target.startswith("xl/") else f"xl/{target}"
        if sheet not in names:
            sheet = sorted(n for n in names if n.startswith("xl/worksheets/sheet"))[0]
        root = ET.fromstring(zf.read(sheet))
    rows: list[list[str]] = []
    for row in root.iter(f"{{{_NS['m']}}}row"):
        cells: dict[int, str] = {}
        for i, c in enumerate(row.findall("m:c", _NS)):
            idx = _col_index(c.get("r", "")) if c.get("r") else i
            kind = c.get("t", "n")
            if kind == "inlineStr":
                value = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
            else:
                v = c.find("m:v", _NS)
                value = v.text if v is not None and v.text is not None else ""
                if kind == "s" and value:
                    value = shared[int(value)]
            cells[idx] = value
        if cells:
            rows.append([cells.get(i, "") for i in range(max(cells) + 1)])
    return rows


def read_sheet_rows(path: Path) -> list[dict[str, str]]:
    """Norms sheet rows keyed by normalised column names (lower case, single spaces)."""
    if path.suffix.lower() == ".xlsx":
        table = read_xlsx_rows(path)
    else:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            table = list(csv.reader(fh))
    if not table:
        return []
    header = [" ".join(h.split()).lower() for h in table[0]]
    return [{h: (r[i].strip() if i < len(r) else "") for i, h in enumerate(header)}
            for r in table[1:] if any(x.strip() for x in r)]


def _column(row: dict[str, str], *prefixes: str) -> str:
    """The value of the first column named exactly like a prefix, else starting with one."""
    for p in prefixes:
        if p in row:
            return row[p]
    for key, value in row.items():
        if any(key.startswith(p) for p in prefixes):
            return value
    return ""


# --------------------------------------------------------------------------- adapter


class WsefepAdapter(Adapter):
    name = "wsefep"
    layout = ("images named <ID>_<number>.jpg (AD_7885.jpg) + norms sheet 'WSEFEP - norms & FACS.xlsx'/.csv"
              " (Picture ID -> Display); without a sheet: label folders/words")
    option_defaults = {
        "norms": ("", "norms sheet (.xlsx or .csv) relative to the root; default: first file named *norms*"),
    }

    @staticmethod
    def find_norms(root: Path, norms: str = "") -> Path | None:
        if norms:
            p = Path(norms)
            p = p if p.is_absolute() else Path(root) / p
            return p if p.is_file() else None
        for p in walk_files(Path(root)):
            if "norms" in p.name.lower() and p.suffix.lower() in (".xlsx", ".csv") \
                    and not p.name.startswith("~$"):
                return p
        return None

    def matches(self, root: Path, **options: Any) -> bool:
        root = Path(root)
        images = [p for p in walk_files(root) if is_image_name(p)]
        if not images:
            return False
        if self.find_norms(root, str(options.get("norms") or "")) is not None:
            return True
        hits = sum(1 for p in images if NAME_PATTERN.match(p.name))
        return hits * 2 >= len(images) and "wsefep" in root.name.lower()

    def _scan(self, root: Path, dataset: str, opts: dict[str, Any], result: ScanResult) -> None:
        norms = self.find_norms(root, opts["norms"])
        if norms is None:
            result.info["norms"] = None
            try:
                fallback = TokensAdapter().scan(root, dataset, include_neutral=opts["include_neutral"],
                                                subject_pattern=FALLBACK_SUBJECT, subject_source="name")
            except LayoutError:
                from . import layouts_tried

                raise LayoutError(root, layouts_tried(), requested=self.name) from None
            result.records.extend(fallback.records)
            result.rejections.extend(fallback.rejections)
            result.info.update(fallback.info, fallback="tokens")
            return
        result.info["norms"] = str(norms)
        try:
            rows = read_sheet_rows(norms)
        except (OSError, zipfile.BadZipFile, ET.ParseError, KeyError, IndexError, ValueError) as exc:
            result.reject(norms, "bad_label_file", str(exc)[:120])
            return
        index: dict[str, Path] = {}
        for p in walk_files(root, result):
            if is_image_name(p):
                if p.name.lower() in index:  # same picture in two folders: keep the first
                    result.reject(p, "duplicate_row", f"same name as {index[p.name.lower()]}")
                    continue
                index[p.name.lower()] = p
            elif p != norms:
                result.bump("ignored_files")
        used: set[str] = set()
        for lineno, row in enumerate(rows, start=2):
            pic = _column(row, "picture id", "picture")
            where = f"{norms.name}:{lineno}"
            if not pic:
                result.reject(where, "missing_file", "empty Picture ID")
                continue
            key = pic.lower()
            if key in used:
                result.reject(where, "duplicate_row", pic)
                continue
            path = index.get(key)
            if path is None:
                result.reject(pic, "missing_file", f"listed in {where}, not found below the root")
                continue
            used.add(key)
            display = _column(row, "display")
            label, reason = classify_label(display, opts["include_neutral"])
            if label is None:
                result.reject(path, reason, f"Display {display!r}")
                continue
            m = NAME_PATTERN.match(path.name)
            subject = _column(row, "displayer") or (m["subject"] if m else "")
            if not subject:
                result.reject(path, "no_subject", where)
                continue
            meta = {
                "display": display,
                "gender": _column(row, "male", "gender", "sex") or None,
                "agreement": _convert(_column(row, "agreement")),
                "purity": _convert(_column(row, "putity", "purity")),
                "intensity": _convert(_column(row, "intensity")),
                "n_judges": _convert(row.get("n", "")),
                "facs": _column(row, "facs") or None,
            }
            meta = {k: (None if v == "x" else v) for k, v in meta.items()}
            result.records.append(RawRecord(dataset=dataset, subject=subject.upper(), label=label,
                                            path=path, meta=meta))
        for key, path in sorted(index.items()):
            if key not in used:
                result.reject(path, "not_in_norms", norms.name)

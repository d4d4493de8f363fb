"""CSV for spreadsheets: the audit log and the patterns' figures."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence


def cell(value: object) -> object:
    """Text that a spreadsheet will not run as a formula (CSV injection): names and descriptions are free
    text. Numbers are left as numbers, so a change of -3 stays a number."""
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def uncell(text: str) -> str:
    """The text `cell` protected, as it was: what Lägesbild's own CSV exports hold reads back unchanged."""
    return text[1:] if text[:1] == "'" and text[1:2] in {"=", "+", "-", "@", "\t", "\r"} else text


def rows_as_csv(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([cell(v) for v in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()

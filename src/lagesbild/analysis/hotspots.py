"""Hotspots: Getis-Ord Gi* over hexagon counts, with a false-discovery-rate correction.

For each hexagon, Gi* compares the deviations in it and its six neighbours with what the whole study area
would give if deviations were spread without regard to place. A large positive z says the neighbourhood
holds more than chance would put there (a hot spot), a large negative one fewer (a cold spot).

Testing every hexagon at 5 % would find about one "hotspot" in twenty by chance alone, so the p-values are
corrected with Benjamini and Hochberg's false discovery rate: of the hexagons called hot or cold at 95 %, at
most 5 % are expected to be false alarms. Validated against PySAL's esda (tests/test_analysis.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import h3

# With fewer deviations than this, a single busy evening makes a "hotspot": we do not test at all.
MIN_DEVIATIONS = 20
CONFIDENCE_LEVELS = ((99, 0.01), (95, 0.05), (90, 0.10))


@dataclass
class Cell:
    cell: int
    count: int
    z: float
    p: float
    kind: str = ""  # "hot", "cold" or ""
    confidence: int | None = None  # 99, 95 or 90 (after the FDR correction)


@dataclass
class Hotspots:
    resolution: int
    cells: list[Cell] = field(default_factory=list)
    verdict: str = ""  # "too_few", "no_variation" or "tested"
    total: int = 0

    @property
    def hot(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "hot"]

    @property
    def cold(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "cold"]


def study_area(counts: dict[int, int], resolution: int, area: dict[str, Any] | None) -> list[int]:
    """The hexagons tested: every one covering the forum's area, with its empty ones (Gi* needs them),
    or, for a forum without an area, the hexagons with deviations and their neighbours."""
    cells = set(counts)
    if area:
        polygons = area["coordinates"] if area["type"] == "MultiPolygon" else [area["coordinates"]]
        for rings in polygons:
            shape = h3.LatLngPoly(*[[(lat, lon) for lon, lat in ring] for ring in rings])
            cells.update(h3.str_to_int(c) for c in h3.polygon_to_cells(shape, resolution))
    else:
        for cell in list(counts):
            cells.update(h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(cell), 1))
    return sorted(cells)


def neighbourhoods(cells: list[int]) -> dict[int, list[int]]:
    """Each hexagon's neighbours in the study area, itself included (the star in Gi*)."""
    present = set(cells)
    return {c: [n for n in (h3.str_to_int(s) for s in h3.grid_disk(h3.int_to_str(c), 1)) if n in present]
            for c in cells}


def gi_star(values: dict[int, float], neighbours: dict[int, list[int]]) -> dict[int, float]:
    """Gi* z-scores with binary weights (Getis and Ord 1995; ArcGIS's and esda's G_Local(star=True, 'B'))."""
    n = len(values)
    mean = sum(values.values()) / n
    s = math.sqrt(max(sum(v * v for v in values.values()) / n - mean * mean, 0.0))
    z: dict[int, float] = {}
    for cell, near in neighbours.items():
        w = len(near)
        lag = sum(values[j] for j in near)
        spread = (n * w - w * w) / (n - 1)
        z[cell] = 0.0 if s == 0 or spread <= 0 else (lag - mean * w) / (s * math.sqrt(spread))
    return z


def two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def fdr_threshold(p_values: list[float], q: float) -> float:
    """Benjamini-Hochberg: the largest p-value that is still significant at false discovery rate q
    (-1 when none is)."""
    m = len(p_values)
    threshold = -1.0
    for rank, p in enumerate(sorted(p_values), start=1):
        if p <= rank / m * q:
            threshold = p
    return threshold


def find_hotspots(counts: dict[int, int], resolution: int, area: dict[str, Any] | None) -> Hotspots:
    total = sum(counts.values())
    result = Hotspots(resolution=resolution, total=total)
    if total < MIN_DEVIATIONS:
        result.verdict = "too_few"
        return result
    cells = study_area(counts, resolution, area)
    values = {c: float(counts.get(c, 0)) for c in cells}
    if len(cells) < 3 or len(set(values.values())) == 1:
        result.verdict = "no_variation"
        return result
    z = gi_star(values, neighbourhoods(cells))
    p = {c: two_sided_p(z[c]) for c in cells}
    thresholds = [(level, fdr_threshold(list(p.values()), q)) for level, q in CONFIDENCE_LEVELS]
    for c in cells:
        cell = Cell(cell=c, count=counts.get(c, 0), z=z[c], p=p[c])
        for level, threshold in thresholds:
            if p[c] <= threshold:
                cell.kind = "hot" if z[c] > 0 else "cold"
                cell.confidence = level
                break
        result.cells.append(cell)
    result.verdict = "tested"
    return result

"""Hotspots: where deviations concentrate more (or less) than chance would put them, over H3 hexagons.

Each hexagon is judged together with its six neighbours, as in Getis-Ord Gi*. If the forum's N deviations
had fallen anywhere in its area with no regard to place, the number in a neighbourhood would follow a
binomial distribution: N tries, each landing in the neighbourhood with a probability equal to its share of
the area. Hexagons on the edge of the area count only with the part that lies inside it. The p-value of a
neighbourhood is that distribution's exact tail: no normal approximation, which cries wolf when hexagons
hold well under one deviation each (as they do at small hexagons, or with few deviations).

Testing hundreds of hexagons at once would find about one "hotspot" in twenty by chance, so the p-values are
corrected with Benjamini and Hochberg's false discovery rate (FDR): of the hexagons marked at an FDR of 5 %,
at most about 5 % are expected to be false alarms; and on data with no pattern at all, a map shows any
hotspot at all in at most about 5 % of cases. tests/test_hotspot_calibration.py checks both on simulated
data, and that planted hotspots are found.

When the hexagons are so small for the number of deviations that a neighbourhood would expect fewer than
MIN_EXPECTED, the test has no power, and the hexagons are made larger, one resolution at a time.

The Gi* z-score is kept beside the exact p-value as a measure of how much a neighbourhood stands out
(validated against PySAL's esda in tests/test_analysis.py); significance comes from the exact test.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import h3
import numpy as np
import shapely
from scipy.stats import binom
from shapely.geometry import Polygon, shape

# With fewer deviations than this, a single busy evening makes a "hotspot": we do not test at all.
MIN_DEVIATIONS = 20
# A neighbourhood should expect at least this many deviations for the test to be able to say anything;
# otherwise the hexagons are made larger.
MIN_EXPECTED = 5.0
COARSEST = 7  # hexagons of about 5 km²: larger ones would cover a district in a handful
# The false discovery rates a hexagon is marked at, strictest first.
FDR_LEVELS = (0.01, 0.05, 0.10)


@dataclass
class Cell:
    cell: int
    count: int  # deviations in the hexagon itself
    z: float  # Gi* z-score of the neighbourhood
    p: float  # exact two-sided p-value of the neighbourhood's count
    expected: float = 0.0  # what the neighbourhood would hold with no pattern
    observed: int = 0  # what it holds
    kind: str = ""  # "hot", "cold" or ""
    fdr: float | None = None  # the strictest false discovery rate it is significant at


@dataclass
class Hotspots:
    resolution: int
    cells: list[Cell] = field(default_factory=list)
    verdict: str = ""  # "too_few", "no_variation" or "tested"
    total: int = 0
    requested_resolution: int | None = None  # set when the hexagons were made larger than asked for

    @property
    def hot(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "hot"]

    @property
    def cold(self) -> list[Cell]:
        return [c for c in self.cells if c.kind == "cold"]


# --- The study area ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StudyArea:
    cells: tuple[int, ...]
    weights: np.ndarray  # the share of each hexagon inside the forum's area, 0 to 1
    neighbours: np.ndarray  # (cells, 7): indices into `cells` of each hexagon and its neighbours; -1 for none


def _hexagon(cell: int) -> Polygon:
    return Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(h3.int_to_str(cell))])


@lru_cache(maxsize=32)
def _area_study(area_json: str, resolution: int) -> StudyArea:
    """Every hexagon that overlaps the forum's area, weighted by the share of it inside. Cached: an area
    changes rarely, and working this out is most of the cost of a test."""
    area = json.loads(area_json)
    geom = shape(area)
    shapely.prepare(geom)
    polygons = area["coordinates"] if area["type"] == "MultiPolygon" else [area["coordinates"]]
    centred: set[int] = set()
    for rings in polygons:
        poly = h3.LatLngPoly(*[[(lat, lon) for lon, lat in ring] for ring in rings])
        centred.update(h3.str_to_int(c) for c in h3.polygon_to_cells(poly, resolution))
    if not centred:  # an area smaller than one hexagon
        point = geom.representative_point()
        centred.add(h3.str_to_int(h3.latlng_to_cell(point.y, point.x, resolution)))
    # A hexagon whose centre lies outside the area can still overlap it: look one ring further out.
    candidates = set(centred)
    for cell in centred:
        candidates.update(h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(cell), 1))
    weights: dict[int, float] = {}
    for cell in candidates:
        hexagon = _hexagon(cell)
        if geom.contains(hexagon):
            weights[cell] = 1.0
        elif geom.intersects(hexagon):
            share = hexagon.intersection(geom).area / hexagon.area
            if share > 1e-6:
                weights[cell] = min(1.0, share)
    return _study(weights)


def _study(weights: dict[int, float]) -> StudyArea:
    cells = tuple(sorted(weights))
    index = {cell: i for i, cell in enumerate(cells)}
    neighbours = np.full((len(cells), 7), -1, dtype=np.int64)
    for i, cell in enumerate(cells):
        near = [index[n] for n in (h3.str_to_int(s) for s in h3.grid_disk(h3.int_to_str(cell), 1)) if n in index]
        neighbours[i, : len(near)] = near
    return StudyArea(cells=cells, weights=np.array([weights[c] for c in cells]), neighbours=neighbours)


def study_area(counts: dict[int, int], resolution: int, area: dict[str, Any] | None) -> StudyArea:
    """The hexagons tested: every one overlapping the forum's area, empty ones included (chance puts
    deviations in them too), or, for a forum without an area, the hexagons with deviations and their
    neighbours. A deviation in a hexagon that barely touches the area still counts there."""
    if area:
        study = _area_study(json.dumps(area, sort_keys=True), resolution)
        missing = set(counts) - set(study.cells)
        if not missing:
            return study
        weights = dict(zip(study.cells, study.weights.tolist(), strict=True))
    else:
        weights = {}
        missing = set()
        for cell in counts:
            for near in h3.grid_disk(h3.int_to_str(cell), 1):
                weights[h3.str_to_int(near)] = 1.0
    for cell in missing:  # on the very edge: give it a small share rather than none
        weights[cell] = 0.05
    return _study(weights)


# --- The test ---------------------------------------------------------------------------------------------

def neighbourhood_sums(values: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    padded = np.append(values, 0.0)  # index -1 reads the appended zero
    return padded[neighbours].sum(axis=1)


def gi_star(values: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Gi* z-scores with binary weights (Getis and Ord 1995; ArcGIS's and esda's G_Local(star=True, 'B'))."""
    n = len(values)
    mean = values.mean()
    s = math.sqrt(max(float((values * values).mean() - mean * mean), 0.0))
    w = (neighbours >= 0).sum(axis=1).astype(float)
    lag = neighbourhood_sums(values, neighbours)
    spread = (n * w - w * w) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (lag - mean * w) / (s * np.sqrt(spread))
    return np.where((s == 0) | (spread <= 0), 0.0, z)


def exact_p_values(observed: np.ndarray, total: int, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided exact binomial p-values of neighbourhood counts, and whether each is high (else low)."""
    share = np.clip(share, 0.0, 1.0)
    upper = binom.sf(observed - 1, total, share)  # P(X >= observed)
    lower = binom.cdf(observed, total, share)  # P(X <= observed)
    expected = total * share
    high = observed > expected
    return np.minimum(1.0, 2.0 * np.where(high, upper, lower)), high


def fdr_threshold(p_values: np.ndarray, q: float) -> float:
    """Benjamini-Hochberg: the largest p-value still significant at false discovery rate q (-1 if none)."""
    m = len(p_values)
    ordered = np.sort(p_values)
    passing = ordered <= (np.arange(1, m + 1) / m) * q
    return float(ordered[passing].max()) if passing.any() else -1.0


def judge_cells(counts: dict[int, int], resolution: int, area: dict[str, Any] | None) -> Hotspots:
    """The test at one resolution, without making hexagons larger."""
    total = sum(counts.values())
    result = Hotspots(resolution=resolution, total=total)
    study = study_area(counts, resolution, area)
    values = np.array([float(counts.get(c, 0)) for c in study.cells])
    if len(study.cells) < 3 or len(set(values.tolist())) == 1:
        result.verdict = "no_variation"
        return result
    neighbourhood_weight = neighbourhood_sums(study.weights, study.neighbours)
    share = neighbourhood_weight / study.weights.sum()
    observed = neighbourhood_sums(values, study.neighbours).round().astype(np.int64)
    p, high = exact_p_values(observed, total, share)
    z = gi_star(values, study.neighbours)
    thresholds = [(q, fdr_threshold(p, q)) for q in FDR_LEVELS]
    for i, cell_id in enumerate(study.cells):
        cell = Cell(cell=cell_id, count=int(values[i]), z=float(z[i]), p=float(p[i]),
                    expected=float(total * share[i]), observed=int(observed[i]))
        for q, threshold in thresholds:
            if p[i] <= threshold:
                cell.kind = "hot" if high[i] else "cold"
                cell.fdr = q
                break
        result.cells.append(cell)
    result.verdict = "tested"
    return result


def mean_expected(counts: dict[int, int], resolution: int, area: dict[str, Any] | None) -> float:
    """What a neighbourhood expects on average, with no pattern."""
    study = study_area(counts, resolution, area)
    if not len(study.cells):
        return 0.0
    share = neighbourhood_sums(study.weights, study.neighbours) / study.weights.sum()
    return float(sum(counts.values()) * share.mean())


def coarser(counts: dict[int, int], resolution: int) -> dict[int, int]:
    """The same counts in hexagons one resolution larger (each hexagon's H3 parent)."""
    parents: dict[int, int] = {}
    for cell, n in counts.items():
        parent = h3.str_to_int(h3.cell_to_parent(h3.int_to_str(cell), resolution - 1))
        parents[parent] = parents.get(parent, 0) + n
    return parents


def find_hotspots(counts: dict[int, int], resolution: int, area: dict[str, Any] | None,
                  counts_at: Any = None) -> Hotspots:
    """Hot and cold spots over hexagons of `resolution`, made larger while they are too small for the data.

    `counts_at(resolution)` gives the counts at a larger resolution where they are stored exactly; without
    it (or where it gives None), each hexagon's parent is used.
    """
    total = sum(counts.values())
    if total < MIN_DEVIATIONS:
        return Hotspots(resolution=resolution, total=total, verdict="too_few")
    requested = resolution
    while resolution > COARSEST and mean_expected(counts, resolution, area) < MIN_EXPECTED:
        larger = counts_at(resolution - 1) if counts_at else None
        counts = larger if larger is not None else coarser(counts, resolution)
        resolution -= 1
    result = judge_cells(counts, resolution, area)
    if resolution != requested:
        result.requested_resolution = requested
    return result

"""Do hotspots cry wolf? The hotspot test on simulated data where there is nothing to find, and on data with
a planted hotspot.

With deviations spread at random over the forum's area, every hexagon marked is a false alarm. At a false
discovery rate of 5 %, a map with any hotspot or cold spot at all should then come up in at most about 5 % of
data sets, whatever the number of deviations and the size of the hexagons. The normal approximation that
Gi* is usually computed with marked hotspots in 13-100 % of such data sets; the exact test must not.

The random numbers are seeded, so the rates below are the same on every run.
"""

from __future__ import annotations

import h3
import numpy as np
import pytest

from lagesbild.analysis import hotspots
from tests.conftest import AREA

pytestmark = pytest.mark.pure  # no database: run once, not again on PostgreSQL

MIN_LON, MIN_LAT = AREA["coordinates"][0][0]
MAX_LON, MAX_LAT = AREA["coordinates"][0][2]
RUNS = 200
# With a true rate of 5 %, more than 18 false alarms in 200 runs happens about once in 200 configurations.
MAX_RATE = 18 / RUNS


def counts_of(lons: np.ndarray, lats: np.ndarray, resolution: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for lon, lat in zip(lons.tolist(), lats.tolist(), strict=True):
        cell = h3.str_to_int(h3.latlng_to_cell(lat, lon, resolution))
        counts[cell] = counts.get(cell, 0) + 1
    return counts


def uniform(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    # The area is a small rectangle in degrees: uniform in degrees is uniform on the ground there.
    return rng.uniform(MIN_LON, MAX_LON, n), rng.uniform(MIN_LAT, MAX_LAT, n)


def any_marked(result: hotspots.Hotspots) -> bool:
    return any(c.kind and (c.fdr or 1) <= 0.05 for c in result.cells)


@pytest.mark.parametrize("resolution", [8, 9, 10])
@pytest.mark.parametrize("n", [25, 60, 200, 1000, 2000])
def test_pure_noise_marks_a_hotspot_in_at_most_about_five_percent_of_data_sets(n: int, resolution: int) -> None:
    rng = np.random.default_rng(1000 * n + resolution)
    alarms = 0
    for _run in range(RUNS):
        lons, lats = uniform(rng, n)
        alarms += any_marked(hotspots.find_hotspots(counts_of(lons, lats, resolution), resolution, AREA))
    assert alarms / RUNS <= MAX_RATE, f"{alarms} of {RUNS} data sets of pure noise showed a hotspot"


def test_the_normal_approximation_would_have_cried_wolf() -> None:
    """The old test (Gi*'s z against the normal distribution), on the same kind of noise: this is what the
    exact test replaced. Small hexagons, 200 deviations."""
    from math import erfc, sqrt

    rng = np.random.default_rng(5)
    alarms = 0
    for _run in range(100):
        counts = counts_of(*uniform(rng, 200), 10)
        study = hotspots.study_area(counts, 10, AREA)
        values = np.array([float(counts.get(c, 0)) for c in study.cells])
        z = hotspots.gi_star(values, study.neighbours)
        p = np.array([erfc(abs(v) / sqrt(2)) for v in z])
        alarms += hotspots.fdr_threshold(p, 0.05) >= 0
    assert alarms >= 25  # so the calibration test above can fail


@pytest.mark.parametrize("resolution", [8, 9, 10])
def test_a_planted_hotspot_is_found(resolution: int) -> None:
    """500 deviations at random and 30 more within about 100 m of one spot: found nearly every time."""
    rng = np.random.default_rng(resolution)
    spot = (18.09, 59.244)
    found = 0
    for _run in range(50):
        lons, lats = uniform(rng, 500)
        lons = np.append(lons, rng.normal(spot[0], 0.0009, 30))
        lats = np.append(lats, rng.normal(spot[1], 0.0005, 30))
        result = hotspots.find_hotspots(counts_of(lons, lats, resolution), resolution, AREA)
        around = {h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(spot[1], spot[0], result.resolution), 1)}
        found += any(c.cell in around and (c.fdr or 1) <= 0.05 for c in result.hot)
    assert found >= 45


def test_a_cold_area_is_found_where_nothing_is_reported() -> None:
    """1,000 deviations over the area except its western third: the empty third is cold."""
    rng = np.random.default_rng(3)
    lons = rng.uniform(MIN_LON + (MAX_LON - MIN_LON) / 3, MAX_LON, 1000)
    lats = rng.uniform(MIN_LAT, MAX_LAT, 1000)
    result = hotspots.find_hotspots(counts_of(lons, lats, 8), 8, AREA)
    west = h3.str_to_int(h3.latlng_to_cell(59.245, MIN_LON + 0.012, 8))
    assert west in {c.cell for c in result.cold if (c.fdr or 1) <= 0.05}

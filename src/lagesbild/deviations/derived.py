"""Values derived from a deviation's position and time, stored with it so analysis can group in SQL:
SWEREF 99 TM metres, the H3 hexagons it lies in, and the local weekday, hour and month it happened.

Local time is the forum's (Europe/Stockholm): a deviation at 23:30 on a Saturday counts as Saturday evening,
in winter and in summer time alike, which SQL on SQLite could not work out by itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from h3.api import basic_int as h3_int

from lagesbild import geometry

# The hexagon resolutions kept: about 0.7 km², 0.1 km² and 0.015 km² (edges of 460, 170 and 65 m).
H3_RESOLUTIONS = (8, 9, 10)


def h3_cells(lon: float, lat: float) -> tuple[int, int, int]:
    """The hexagons at resolutions 8, 9 and 10 at once: the finest found, the others its parents (quicker, for
    an import of a million rows)."""
    finest = h3_int.latlng_to_cell(lat, lon, 10)
    return h3_int.cell_to_parent(finest, 8), h3_int.cell_to_parent(finest, 9), finest


def position_fields(lon: float, lat: float) -> dict[str, Any]:
    x, y = geometry.to_sweref99tm(lon, lat)
    h3_8, h3_9, h3_10 = h3_cells(lon, lat)
    return {"sweref_x": x, "sweref_y": y, "h3_8": h3_8, "h3_9": h3_9, "h3_10": h3_10}


def time_fields(observed_at: dt.datetime, timezone: str) -> dict[str, int]:
    local = observed_at.astimezone(ZoneInfo(timezone))
    return {"local_weekday": local.weekday(), "local_hour": local.hour, "local_month": local.year * 100 + local.month}


def derived_fields(lon: float, lat: float, observed_at: dt.datetime, timezone: str) -> dict[str, Any]:
    return {**position_fields(lon, lat), **time_fields(observed_at, timezone)}

#!/usr/bin/env python3
"""Benchmark: the patterns with 100,000 deviations in one forum.

    .venv/bin/python bench/bench_analysis.py                 # SQLite, in a temporary file
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_analysis.py

Goal (issue 5): the hexagon layer and the weekday x hour grid answer in under 200 ms median, and Gi*
hotspots in under 1 s, on SQLite and on PostgreSQL. Requests go through the whole Django stack in-process.
"""

from __future__ import annotations

import sys

from common import median, save, start, timed


def main() -> int:
    args, load_seconds = start(__doc__ or "", runs=20)
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from lagesbild.demo import FARSTA_AREA
    from lagesbild.forums.models import User
    from lagesbild.geometry import area_bounds

    client = Client()
    client.force_login(User.objects.get(email="polis@farsta.demo"))
    west, south, east, north = area_bounds(FARSTA_AREA) or (0.0, 0.0, 0.0, 0.0)
    district = f"{west:.6f},{south:.6f},{east:.6f},{north:.6f}"
    since = (timezone.now() - timezone.timedelta(days=30)).isoformat()
    base = "/api/forums/bench/patterns"
    cases = {
        "hexagon layer, district, all time (zoom 13)": (f"{base}/hexagons", {"bbox": district, "zoom": 13}),
        "hexagon layer, district, 30 days (zoom 13)": (f"{base}/hexagons", {"bbox": district, "zoom": 13,
                                                                            "from": since}),
        "hexagon layer, centre at zoom 15, all time": (f"{base}/hexagons", {"bbox": "18.080,59.238,18.105,59.250",
                                                                            "zoom": 15}),
        "weekday x hour grid, all time": (f"{base}/week-hours", {}),
        "weekday x hour grid, drugs, all time": (f"{base}/week-hours", {"category": "drugs"}),
        "Hotspots, all time, resolution 9": (f"{base}/hotspots", {}),
        "Hotspots, all time, resolution 10": (f"{base}/hotspots", {"resolution": 10}),
        "Hotspots, 30 days": (f"{base}/hotspots", {"from": since}),
        "month trend with last year": (f"{base}/trend", {}),
        "actors and overlap, all time": (f"{base}/actors", {}),
        "repeat places, 12 weeks": (f"{base}/repeat-places", {}),
        "compare, 30 days with the 30 before": (f"{base}/compare", {"from": since}),
        "patterns page, 90 days (every figure)": ("/f/bench/monster/", {"period": "90"}),
    }
    results: dict = {"database": connection.vendor, "deviations": args.count, "load_seconds": round(load_seconds, 1),
                     "cases": {}}
    for name, (url, params) in cases.items():
        timings, response = timed(lambda url=url, params=params: client.get(url, params), args.runs)
        assert response.status_code == 200, response.content[:200]
        results["cases"][name] = {"median_ms": round(median(timings), 1), "bytes": len(response.content)}
        print(f"  {name}: median {median(timings):.1f} ms, {len(response.content) / 1024:.0f} KiB")
    save("analysis", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

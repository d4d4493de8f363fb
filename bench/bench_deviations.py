#!/usr/bin/env python3
"""Benchmark: the deviations endpoint with 100,000 deviations in one forum, and the map page's asset size.

    .venv/bin/python bench/bench_deviations.py                 # SQLite, in a temporary file
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_deviations.py

Goal (issue 2): a district-sized bbox with a 30-day filter answers in under 100 ms median on SQLite;
the map page's own JavaScript and CSS stay under 1 MB before gzip (MapLibre excluded).
Requests go through the whole Django stack (middleware, session auth, query, JSON) in-process.
"""

from __future__ import annotations

import json
import sys

from common import ROOT, median, save, start, timed


def main() -> int:
    args, load_seconds = start(__doc__ or "", runs=30)
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from lagesbild.demo import FARSTA_AREA
    from lagesbild.forums.models import User
    from lagesbild.geometry import area_bounds

    client = Client()
    client.force_login(User.objects.get(email="polis@farsta.demo"))
    # A phone or desktop viewport over most of the district: 80 % of the area's extent.
    west, south, east, north = area_bounds(FARSTA_AREA) or (0.0, 0.0, 0.0, 0.0)
    dx, dy = (east - west) * 0.1, (north - south) * 0.1
    district = f"{west + dx:.6f},{south + dy:.6f},{east - dx:.6f},{north - dy:.6f}"
    centre = "18.085,59.240,18.100,59.247"  # Farsta centrum, where the hotspots are
    since = (timezone.now() - timezone.timedelta(days=30)).isoformat()
    listing = "/api/forums/bench/deviations"
    aggregates = "/api/forums/bench/deviations/aggregates"
    cases = {
        "district bbox, 30 days, limit 1000 (API default)": (listing, {"bbox": district, "from": since}),
        "district bbox, 30 days, limit 3000 (map page)": (listing, {"bbox": district, "from": since, "limit": 3000}),
        "centre bbox, 30 days, category drugs": (listing, {"bbox": centre, "from": since, "category": "drugs"}),
        "centre bbox, all time, limit 1000": (listing, {"bbox": centre}),
        "small bbox in a quiet street, all time": (listing, {"bbox": "18.120,59.230,18.125,59.233"}),
        "aggregates, district bbox, all time": (aggregates, {"bbox": district}),
        "aggregates, district bbox, 90 days": (aggregates, {"bbox": district, "from": (
            timezone.now() - timezone.timedelta(days=90)).isoformat()}),
    }
    results: dict = {"database": connection.vendor, "deviations": args.count, "load_seconds": round(load_seconds, 1),
                     "cases": {}}
    for name, (url, params) in cases.items():
        timings, response = timed(lambda url=url, params=params: client.get(url, params), args.runs)
        assert response.status_code == 200, response.content[:200]
        body = json.loads(response.content)
        p90 = sorted(timings)[int(len(timings) * 0.9) - 1]
        results["cases"][name] = {"median_ms": round(median(timings), 1), "p90_ms": round(p90, 1),
                                  "matched": body["numberMatched"], "returned": body["numberReturned"],
                                  "bytes": len(response.content)}
        print(f"  {name}: median {median(timings):.1f} ms, p90 {p90:.1f} ms; {body['numberMatched']} matched, "
              f"{body['numberReturned']} returned, {len(response.content) / 1024:.0f} KiB")

    static = ROOT / "src" / "lagesbild" / "static" / "lagesbild"
    own_assets = sum(p.stat().st_size for p in static.glob("*") if p.suffix in {".js", ".css"})
    maplibre = ROOT / "node_modules" / "maplibre-gl" / "dist"
    results["assets"] = {
        "own_js_css_bytes": own_assets,
        "maplibre_bytes": sum((maplibre / n).stat().st_size for n in (
            "maplibre-gl-csp.js", "maplibre-gl-csp-worker.js", "maplibre-gl.css") if (maplibre / n).exists()),
    }
    print(f"  map page JS+CSS (own, before gzip): {own_assets / 1024:.1f} KiB; "
          f"MapLibre: {results['assets']['maplibre_bytes'] / 1024:.0f} KiB")
    save("deviations", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

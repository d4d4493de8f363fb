#!/usr/bin/env python3
"""Benchmark: the deviations endpoint with 100,000 deviations in one forum, and the map page's asset size.

    .venv/bin/python bench/bench_deviations.py                 # SQLite, in a temporary file
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_deviations.py

Goal (issue 2): a district-sized bbox with a 30-day filter answers in under 100 ms median on SQLite;
the map page's own JavaScript and CSS stay under 1 MB before gzip (MapLibre excluded).
Requests go through the whole Django stack (middleware, session auth, query, JSON) in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lagesbild-bench-"))
    if not os.environ.get("LAGESBILD_DATABASE_URL"):
        os.environ["LAGESBILD_DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.setdefault("LAGESBILD_VAR_DIR", str(workdir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lagesbild.settings")
    os.environ.setdefault("LAGESBILD_PROJECT_DIR", str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from lagesbild.demo import FARSTA_AREA, create_demo_forum
    from lagesbild.forums.models import User
    from lagesbild.geometry import area_bounds

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    create_demo_forum(count=args.count, slug="bench", name="Benchmark")
    load_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics for the planner, as a long-running database has

    client = Client()
    client.force_login(User.objects.get(email="polis@farsta.demo"))
    # A phone or desktop viewport over most of the district: 80 % of the area's extent.
    west, south, east, north = area_bounds(FARSTA_AREA) or (0.0, 0.0, 0.0, 0.0)
    dx, dy = (east - west) * 0.1, (north - south) * 0.1
    district = f"{west + dx:.6f},{south + dy:.6f},{east - dx:.6f},{north - dy:.6f}"
    centre = "18.085,59.240,18.100,59.247"  # Farsta centrum, where the hotspots are
    since = (timezone.now() - timezone.timedelta(days=30)).isoformat()
    cases = {
        "district bbox, 30 days, limit 1000 (API default)": {"bbox": district, "from": since},
        "district bbox, 30 days, limit 3000 (map page)": {"bbox": district, "from": since, "limit": 3000},
        "centre bbox, 30 days, category drugs": {"bbox": centre, "from": since, "category": "drugs"},
        "centre bbox, all time, limit 1000": {"bbox": centre},
        "small bbox in a quiet street, all time": {"bbox": "18.120,59.230,18.125,59.233"},
    }
    results = {"database": connection.vendor, "deviations": args.count, "load_seconds": round(load_seconds, 1),
               "cases": {}}
    print(f"{connection.vendor}: {args.count} deviations loaded in {load_seconds:.1f} s")
    endpoints = {name: "/api/forums/bench/deviations" for name in cases}
    for name, params in {
        "aggregates, district bbox, all time": {"bbox": district},
        "aggregates, district bbox, 90 days": {"bbox": district, "from": (
            timezone.now() - timezone.timedelta(days=90)).isoformat()},
    }.items():
        cases[name] = params
        endpoints[name] = "/api/forums/bench/deviations/aggregates"
    for name, params in cases.items():
        url = endpoints[name]
        client.get(url, params)  # warm-up
        timings = []
        size = matched = 0
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.content[:200]
            size = len(response.content)
            body = json.loads(response.content)
            matched = body["numberMatched"]
            returned = body["numberReturned"]
        median = statistics.median(timings)
        p90 = sorted(timings)[int(len(timings) * 0.9) - 1]
        results["cases"][name] = {"median_ms": round(median, 1), "p90_ms": round(p90, 1), "matched": matched,
                                  "returned": returned, "bytes": size}
        print(f"  {name}: median {median:.1f} ms, p90 {p90:.1f} ms; {matched} matched, {returned} returned, "
              f"{size / 1024:.0f} KiB")

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
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"deviations-{connection.vendor}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())

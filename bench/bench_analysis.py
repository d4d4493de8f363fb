#!/usr/bin/env python3
"""Benchmark: the patterns with 100,000 deviations in one forum.

    .venv/bin/python bench/bench_analysis.py                 # SQLite, in a temporary file
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_analysis.py

Goal (issue 5): the hexagon layer and the weekday x hour grid answer in under 200 ms median, and Gi*
hotspots in under 1 s, on SQLite and on PostgreSQL. Requests go through the whole Django stack in-process.
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
    parser.add_argument("--runs", type=int, default=20)
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
        cursor.execute("ANALYZE")

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
        "Gi* hotspots, all time, resolution 9": (f"{base}/hotspots", {}),
        "Gi* hotspots, all time, resolution 10": (f"{base}/hotspots", {"resolution": 10}),
        "Gi* hotspots, 30 days": (f"{base}/hotspots", {"from": since}),
        "month trend with last year": (f"{base}/trend", {}),
        "actors and overlap, all time": (f"{base}/actors", {}),
        "repeat places, 12 weeks": (f"{base}/repeat-places", {}),
        "compare, 30 days with the 30 before": (f"{base}/compare", {"from": since}),
        "patterns page, 90 days (every figure)": ("/f/bench/monster/", {"period": "90"}),
    }
    results = {"database": connection.vendor, "deviations": args.count, "load_seconds": round(load_seconds, 1),
               "cases": {}}
    print(f"{connection.vendor}: {args.count} deviations loaded in {load_seconds:.1f} s")
    for name, (url, params) in cases.items():
        client.get(url, params)  # warm-up
        timings = []
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.get(url, params)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.content[:200]
        median = statistics.median(timings)
        results["cases"][name] = {"median_ms": round(median, 1), "bytes": len(response.content)}
        print(f"  {name}: median {median:.1f} ms, {len(response.content) / 1024:.0f} KiB")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"analysis-{connection.vendor}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: the monthly meeting's pages with 100,000 deviations in one forum.

    .venv/bin/python bench/bench_meetings.py                 # SQLite, in a temporary file
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_meetings.py

Measures, through the whole Django stack in-process: a meeting's agenda (API and the shared-screen page),
a place's page (a circle and a polygon), suggested places over 90 days, an action's effect, and the
protocol as PDF. Our own goal: each under 500 ms median, so a meeting never waits for the screen.
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
    parser.add_argument("--runs", type=int, default=15)
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

    from lagesbild.demo import create_demo_forum
    from lagesbild.forums.models import Membership, User
    from lagesbild.meetings import services
    from lagesbild.meetings.models import Action, Meeting
    from lagesbild.places import services as places

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    forum = create_demo_forum(count=args.count, slug="bench", name="Benchmark")
    load_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    coordinator = Membership.objects.get(forum=forum, user__email="samordnare@farsta.demo")
    park = places.create_place(coordinator, places.PlaceInput(name="Centrumområdet", area={
        "type": "Polygon", "coordinates": [[[18.085, 59.240], [18.100, 59.239], [18.102, 59.2445],
                                            [18.093, 59.248], [18.084, 59.246], [18.085, 59.240]]]}))
    meeting = services.schedule_meeting(coordinator, services.MeetingInput())
    services.build_agenda(coordinator, meeting.pk)
    published = Meeting.objects.filter(forum=forum, protocols__isnull=False).order_by("-held_at").first()
    circle = places.forum_places(coordinator).exclude(pk=park.pk).first()
    done = Action.objects.filter(forum=forum, status="done").first()

    client = Client()
    client.force_login(User.objects.get(email="samordnare@farsta.demo"))
    cases = {
        "meeting with agenda (API)": f"/api/forums/bench/meetings/{meeting.pk}",
        "meeting page (shared screen)": f"/f/bench/moten/{meeting.pk}/",
        "place page, circle": f"/f/bench/platser/{circle.pk}/",
        "place page, polygon": f"/f/bench/platser/{park.pk}/",
        "places page with suggestions (90 days)": "/f/bench/platser/",
        "action effect (API)": f"/api/forums/bench/actions/{done.pk}/effect",
        "protocol PDF": f"/api/forums/bench/meetings/{published.pk}/protocols/1/pdf",
    }
    results = {"database": connection.vendor, "deviations": args.count, "load_seconds": round(load_seconds, 1),
               "cases": {}}
    print(f"{connection.vendor}: {args.count} deviations loaded in {load_seconds:.1f} s")
    timings_build = []
    for _ in range(args.runs):
        start = time.perf_counter()
        services.build_agenda(coordinator, meeting.pk)
        timings_build.append((time.perf_counter() - start) * 1000)
    results["cases"]["build the agenda again (domain)"] = {"median_ms": round(statistics.median(timings_build), 1)}
    print(f"  build the agenda again (domain): median {statistics.median(timings_build):.1f} ms")
    for name, url in cases.items():
        client.get(url)  # warm-up
        timings = []
        for _ in range(args.runs):
            start = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.content[:200]
        median = statistics.median(timings)
        results["cases"][name] = {"median_ms": round(median, 1), "bytes": len(response.content)}
        print(f"  {name}: median {median:.1f} ms, {len(response.content) / 1024:.0f} KiB")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"meetings-{connection.vendor}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())

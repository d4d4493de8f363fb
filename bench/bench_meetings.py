#!/usr/bin/env python3
"""Benchmark: the monthly meeting's pages with 100,000 deviations in one forum.

    .venv/bin/python bench/bench_meetings.py                 # SQLite, in a temporary file
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_meetings.py

Measures, through the whole Django stack in-process: a meeting's agenda (API and the shared-screen page),
a place's page (a circle and a polygon), suggested places over 90 days, an action's effect, and the
protocol as PDF. Our own goal: each under 500 ms median, so a meeting never waits for the screen.
"""

from __future__ import annotations

import sys

from common import median, save, start, timed


def main() -> int:
    args, load_seconds = start(__doc__ or "", runs=15)
    from django.db import connection
    from django.test import Client

    from lagesbild.forums.models import Membership, User
    from lagesbild.meetings import services
    from lagesbild.meetings.models import Action, Meeting
    from lagesbild.places import services as places

    coordinator = Membership.objects.get(forum__slug="bench", user__email="samordnare@farsta.demo")
    forum = coordinator.forum
    park = places.create_place(coordinator, places.PlaceInput(name="Centrumområdet", area={
        "type": "Polygon", "coordinates": [[[18.085, 59.240], [18.100, 59.239], [18.102, 59.2445],
                                            [18.093, 59.248], [18.084, 59.246], [18.085, 59.240]]]}))
    meeting = services.schedule_meeting(coordinator, services.MeetingInput())
    services.build_agenda(coordinator, meeting.pk)
    published = Meeting.objects.filter(forum=forum, protocols__isnull=False).order_by("-held_at").first()
    circle = places.forum_places(coordinator).exclude(pk=park.pk).first()
    done = Action.objects.filter(forum=forum, status="done").first()
    assert published and circle and done

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
    results: dict = {"database": connection.vendor, "deviations": args.count, "load_seconds": round(load_seconds, 1),
                     "cases": {}}
    timings, _items = timed(lambda: services.build_agenda(coordinator, meeting.pk), args.runs)
    results["cases"]["build the agenda again (domain)"] = {"median_ms": round(median(timings), 1)}
    print(f"  build the agenda again (domain): median {median(timings):.1f} ms")
    for name, url in cases.items():
        timings, response = timed(lambda url=url: client.get(url), args.runs)
        assert response.status_code == 200, response.content[:200]
        results["cases"][name] = {"median_ms": round(median(timings), 1), "bytes": len(response.content)}
        print(f"  {name}: median {median(timings):.1f} ms, {len(response.content) / 1024:.0f} KiB")
    save("meetings", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

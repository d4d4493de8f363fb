#!/usr/bin/env python3
"""Benchmark: a district's month of points, 8 clients at once, the app beside the hand-written SQL, in several
rounds. bench_city.py measures this once among its other views; one round moves by several percent from run
to run on a small machine, too much to tell "about even" from "ahead". Each round serves the app with gunicorn
(4 workers), counts its answers a second, then those of the SQL, on the same database.

    .venv/bin/python scripts/with_postgres.py --as-deployed -- .venv/bin/python bench/bench_clients.py \\
        --count 1000000 --rounds 5

A database that holds the city already (LAGESBILD_DATABASE_URL) is not loaded again.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import urllib.request

from bench_city import DISTRICT, _served_throughput, box_text, hand_written, load, sql_throughput
from common import save, server_settings, setup_django


def main() -> int:
    os.environ.setdefault("LAGESBILD_KEPT_MB", "0")  # every answer built afresh, as the SQL's
    args = setup_django(__doc__ or "", runs=1, extra=[("--clients-seconds", float, 20.0), ("--rounds", int, 5)])
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    _writing, forum, membership = load(args.count)
    client = Client()
    client.force_login(membership.user)
    since = (timezone.now() - dt.timedelta(days=30)).replace(microsecond=0)
    sql = hand_written(connection.vendor)["list"]
    params = [forum.pk, membership.organisation_id, since, DISTRICT[0], DISTRICT[2], DISTRICT[1], DISTRICT[3]]
    listed = {"bbox": box_text(DISTRICT), "from": since.isoformat(), "limit": 3000, "count": "false"}
    query = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in listed.items())
    print(f"{connection.vendor} {server_settings()}", flush=True)
    rounds = []
    for number in range(args.rounds):
        app = _served_throughput(args, client, f"/api/forums/{forum.slug}/deviations?{query}")
        by_hand = sql_throughput(sql, params, args.clients_seconds)
        rounds.append({"app": round(app, 1), "sql": round(by_hand, 1), "ratio": round(app / by_hand, 3)})
        print(f"round {number + 1}: SQL {by_hand:.1f} req/s, Lägesbild {app:.1f} req/s ({app / by_hand:.2f})",
              flush=True)
    ratio = statistics.median(r["ratio"] for r in rounds)
    print(f"median ratio {ratio:.2f} over {len(rounds)} rounds (goal: at least 1)")
    save(f"clients-{args.count}", {"deviations": args.count, "rounds": rounds, "median_ratio": ratio})
    return 0


if __name__ == "__main__":
    sys.exit(main())

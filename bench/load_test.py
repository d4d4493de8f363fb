#!/usr/bin/env python3
"""Load test: simulated members (bench/locustfile.py) against gunicorn and PostgreSQL, run as
docs/deployment.md runs them, on loopback.

    make load-test                     # 200 members for 10 minutes over 1,000,000 deviations
    .venv/bin/python scripts/with_postgres.py --as-deployed -- \
        .venv/bin/python bench/load_test.py --users 200 --minutes 10

`--as-deployed` starts PostgreSQL as docs/deployment.md sets it up (durable, sized to the machine); without it,
the tests' quick cluster (fsync off) answers writes faster than an installation would. The settings are saved
with the report.

It loads the city (as bench/bench_city.py does), makes ten API tokens, a meeting and a signed-in session for
the meeting screen, serves the app with gunicorn (gthread workers) and runs locust headless. The report goes to
bench/results/load-<users>-<minutes>min.{csv,html,json}; the goal is no errors and a 95th percentile of at most
300 ms over all requests.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_city import CITY, load
from common import ROOT, server_settings, setup_django


def main() -> int:
    args = setup_django(__doc__ or "", runs=1, extra=[("--users", int, 200), ("--minutes", float, 10.0),
                                                        ("--workers", int, 4)])
    if not os.environ["LAGESBILD_DATABASE_URL"].startswith("postgres"):
        print("Run it on PostgreSQL: scripts/with_postgres.py -- ... (see the docstring).", file=sys.stderr)
        return 2
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from lagesbild.deviations.models import Deviation
    from lagesbild.forums.models import ApiToken, Role
    from lagesbild.meetings.models import Meeting

    _writing, forum, membership = load(args.count)
    shown = server_settings()
    print(f"PostgreSQL: {shown}", flush=True)
    deviations = Deviation.objects.filter(forum=forum).count()  # a database loaded before may hold more
    membership.role = Role.COORDINATOR
    membership.save(update_fields=["role"])
    tokens = [ApiToken.issue(membership, f"load {n}")[1] for n in range(10)]
    now = timezone.now()
    meeting = Meeting.objects.create(forum=forum, held_at=now, title="Belastningstest",
                                     period_start=now - timezone.timedelta(days=30), period_end=now)
    session = SessionStore()
    session["_auth_user_id"] = str(membership.user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = membership.user.get_session_auth_hash()
    session.create()
    work = Path(tempfile.mkdtemp(prefix="lagesbild-load-"))
    settings_file = work / "settings.json"
    settings_file.write_text(json.dumps({
        "forum": forum.slug, "city": list(CITY), "tokens": tokens, "session": session.session_key,
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "meeting_screen": f"/f/{forum.slug}/moten/{meeting.pk}/visning/"}))

    port = 18600 + os.getpid() % 300
    env = {**os.environ, "LAGESBILD_DEBUG": "false", "LAGESBILD_ALLOWED_HOSTS": "127.0.0.1",
           "LAGESBILD_SSL_REDIRECT": "false", "LAGESBILD_KEPT_MB": "32", "PYTHONPATH": str(ROOT / "src"),
           "LAGESBILD_LOAD_SETTINGS": str(settings_file)}
    bin_dir = Path(sys.executable).parent
    # As docs/deployment.md runs it: threads, since every open map also holds a live stream; connections kept
    # open between a member's actions, as a reverse proxy keeps its own (gunicorn's 2 s would close them while
    # the next request is on its way, and locust counts that as a failure).
    server = subprocess.Popen([str(bin_dir / "gunicorn"), "lagesbild.wsgi:application", "--workers",
                               str(args.workers), "--worker-class", "gthread", "--threads", "50",
                               "--keep-alive", "75",
                               "--bind", f"127.0.0.1:{port}", "--log-file", str(work / "gunicorn.log")],
                              env=env, cwd=ROOT)
    name = f"load-{args.users}-{args.minutes:g}min"
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.3)
        subprocess.run([str(bin_dir / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
                        "--users", str(args.users), "--spawn-rate", "10", "--run-time", f"{int(args.minutes * 60)}s",
                        "--host", f"http://127.0.0.1:{port}", "--csv", str(out / name), "--html",
                        str(out / f"{name}.html"), "--only-summary"], env=env, check=False)
    finally:
        server.terminate()
        server.wait()
    with (out / f"{name}_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    summary = {
        "users": args.users, "minutes": args.minutes, "deviations": deviations, "workers": args.workers,
        "server_settings": shown,
        "requests": int(total["Request Count"]), "failures": int(total["Failure Count"]),
        "median_ms": float(total["50%"]), "p95_ms": float(total["95%"]), "p99_ms": float(total["99%"]),
        "requests_per_second": float(total["Requests/s"]),
        "by_name": {n: {"requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                        "median_ms": float(r["50%"]), "p95_ms": float(r["95%"])}
                    for n, r in rows.items() if n != "Aggregated"},
    }
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
    print(f"\n{summary['requests']:,} requests, {summary['failures']} failures; median {summary['median_ms']:.0f} ms, "
          f"p95 {summary['p95_ms']:.0f} ms, p99 {summary['p99_ms']:.0f} ms, {summary['requests_per_second']:.0f}/s")
    for request_name, row in sorted(summary["by_name"].items()):
        print(f"  {request_name}: {row['requests']:,} requests, {row['failures']} failures, median "
              f"{row['median_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms")
    return 0 if summary["failures"] == 0 and summary["p95_ms"] <= 300 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: a city's worth of deviations. Prints issue 14's table, each view beside the same query written by
hand in SQL.

    .venv/bin/python bench/bench_city.py --count 1000000                 # SQLite, in a temporary file
    .venv/bin/python scripts/with_postgres.py --as-deployed -- .venv/bin/python bench/bench_city.py --count 1000000
    .venv/bin/python scripts/with_postgres.py --as-deployed -- .venv/bin/python bench/bench_city.py --count 10000000

The rows are loaded through the import's bulk path (deviations.bulk.Writer, as `lagesbild import` writes them):
the spatial index, the derived columns, the data versions and the pre-aggregated counts are all kept by it.
Up to 1 M rows lie in one forum over Stockholm; past that, 150 forums share them, Stockholm keeps 1 M and the
views read it. With LAGESBILD_DATABASE_URL naming a SQLite file or PostgreSQL database that holds the forums
already, they are not loaded again (to run older code over the same rows).

The views go through the whole Django stack in this process (middleware, session, query, JSON, gzip), medians
of --runs, each built afresh: the answers a process keeps for revalidation (LAGESBILD_KEPT_MB) are forgotten
before every request, so these are the figures of a view nobody has asked for since the last change.
"8 clients" serves the app with gunicorn (4 workers, DEBUG off) on loopback and counts answers per second from
8 threads, beside 8 threads running the hand-written SQL. Sizes are the bytes sent with gzip; before gzip in
brackets.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import ROOT, save, setup_django, timed

# Stockholm's built-up area, and Farsta's district inside it.
CITY = (17.80, 59.22, 18.20, 59.42)
DISTRICT = (18.055, 59.228, 18.125, 59.258)
HOTSPOTS = [(18.092, 59.243), (18.063, 59.334), (17.945, 59.403), (18.008, 59.293), (18.075, 59.314),
            (17.905, 59.372), (18.118, 59.305), (17.985, 59.339)]
DAYS = 730


def rows_for(rng: random.Random, count: int, box: tuple[float, float, float, float], categories: list[int],
             organisations: list[int], now: dt.datetime, hotspots: list[tuple[float, float]]) -> Any:
    from lagesbild.interop.imports import Staged

    west, south, east, north = box
    for row in range(count):
        if rng.random() < 0.5:
            lon0, lat0 = rng.choice(hotspots)
            lon, lat = lon0 + rng.gauss(0, 0.006), lat0 + rng.gauss(0, 0.003)
        else:
            lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        lon, lat = min(max(lon, west), east), min(max(lat, south), north)
        observed = now - dt.timedelta(seconds=rng.random() * DAYS * 86400)
        visibility = "organisation" if rng.random() < 0.03 else "forum"
        yield Staged(row, rng.choice(categories), rng.choice(organisations), round(lon, 6), round(lat, 6),
                     observed, None, None, "", "Klotter på väggen", "medium", visibility, "new")


def load(count: int) -> tuple[float, Any, Any]:
    """The forums and their rows; returns seconds spent writing rows, the Stockholm forum and its member."""
    from django.db import connection, transaction
    from django.utils import timezone

    from lagesbild.deviations import bulk
    from lagesbild.deviations.models import Category
    from lagesbild.deviations.taxonomy import seed_default_taxonomy
    from lagesbild.forums.models import Forum, Membership, Organisation, Role, User

    existing = Membership.objects.filter(forum__slug="city0").select_related("forum", "user").first()
    if existing is not None:
        print(f"{connection.vendor}: the forums are there already; not loaded again", flush=True)
        return 0.0, existing.forum, existing

    seed_default_taxonomy(Category)
    categories = list(Category.objects.filter(forum__isnull=True, parent__isnull=False).values_list("pk", flat=True))
    forums = 1 if count <= 1_000_000 else 150
    now = timezone.now()
    user = User.objects.create_user(email="polis@stockholm.bench", password="bench-only-password")
    stockholm = member = None
    writing = 0.0
    for index in range(forums):
        # The other forums lie side by side further south, each as big as the city.
        dy = -0.25 * index
        box = (CITY[0], CITY[1] + dy, CITY[2], CITY[3] + dy)
        area = {"type": "Polygon", "coordinates": [[[box[0], box[1]], [box[2], box[1]], [box[2], box[3]],
                                                    [box[0], box[3]], [box[0], box[1]]]]}
        forum = Forum.objects.create(slug=f"city{index}", name=f"Stad {index}", area=area, require_two_factor=False)
        orgs = [Organisation.objects.create(forum=forum, name=f"Organisation {n}", kind="district").pk
                for n in range(10)]
        membership = Membership.objects.create(forum=forum, user=user, organisation_id=orgs[0], role=Role.REPORTER)
        if forums == 1:
            share = count
        else:  # Stockholm a million, the other forums the rest
            share = 1_000_000 if index == 0 else (count - 1_000_000) // (forums - 1)
        rng = random.Random(index)
        hotspots = [(lon, lat + dy) for lon, lat in HOTSPOTS]
        started = time.perf_counter()
        with transaction.atomic(), bulk.Writer(  # type: ignore[arg-type]
                membership, None, "import", expected=share) as writer:
            chunk: list[Any] = []
            for staged in rows_for(rng, share, box, categories, orgs, now, hotspots):
                chunk.append(staged)
                if len(chunk) == 20_000:
                    writer.write(chunk)
                    chunk = []
            writer.write(chunk)
        writing += time.perf_counter() - started
        if index == 0:
            stockholm, member = forum, membership
        if forums > 1 and index % 10 == 0:
            print(f"  forum {index + 1} of {forums} loaded", flush=True)
    started = time.perf_counter()
    if connection.vendor == "postgresql":
        # The other tables' statistics, as autovacuum would soon after. The bulk path has vacuumed the deviations
        # and their counts after each forum's load (as an import does; counted in the writing time), and SQLite's
        # gathers its statistics itself (and the app does after each migration and nightly): what they gather
        # is what these figures are measured with.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"{connection.vendor}: {count:,} deviations written in {writing:.1f} s "
          f"({count / writing:,.0f} a second); ANALYZE {time.perf_counter() - started:.1f} s", flush=True)
    return writing, stockholm, member


def box_text(box: tuple[float, float, float, float]) -> str:
    return ",".join(f"{v:.6f}" for v in box)


def tiles_covering(box: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    def tile(lon: float, lat: float) -> tuple[int, int]:
        n = 2**z
        return (int((lon + 180) / 360 * n),
                int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))

    x0, y0 = tile(box[0], box[3])
    x1, y1 = tile(box[2], box[1])
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def screen_box(centre: tuple[float, float], zoom: float, width: int, height: int) -> tuple[float, ...]:
    """The box a screen of width x height CSS pixels shows at a map zoom (512-pixel tiles, as MapLibre's)."""
    metres_per_pixel = 156543.03 * math.cos(math.radians(centre[1])) / 2 ** (zoom + 1)
    dlon = width * metres_per_pixel / (111320 * math.cos(math.radians(centre[1]))) / 2
    dlat = height * metres_per_pixel / 111320 / 2
    return (centre[0] - dlon, centre[1] - dlat, centre[0] + dlon, centre[1] + dlat)


def sql_timed(sql: str, params: list[Any], runs: int) -> float:
    from django.db import connection

    def run() -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return len(cursor.fetchall())

    timings, _rows = timed(run, runs)
    return statistics.median(timings)


def hand_written(vendor: str) -> dict[str, str]:
    """The same queries by hand: what the database alone needs, with the visibility rule."""
    seen = ("d.forum_id = %s AND d.withdrawn_at IS NULL AND (d.visibility = 'forum' OR d.organisation_id = %s)")
    cell = "CAST(d.lon / %s AS INTEGER), CAST(d.lat / %s AS INTEGER)" if vendor == "sqlite" else \
        "floor(d.lon / %s), floor(d.lat / %s)"
    return {
        "list": f"""SELECT d.id, d.lon, d.lat, c.key, p.key, d.observed_at, d.status, d.severity, d.organisation_id,
                           d.place_name, d.visibility
                    FROM deviations_deviation d JOIN deviations_category c ON c.id = d.category_id
                    LEFT JOIN deviations_category p ON p.id = c.parent_id
                    WHERE {seen} AND d.observed_at >= %s AND d.lon BETWEEN %s AND %s AND d.lat BETWEEN %s AND %s
                    ORDER BY d.observed_at DESC, d.id DESC LIMIT 3000""",
        "grid": f"""SELECT {cell}, d.category_id, count(*), sum(d.lon), sum(d.lat) FROM deviations_deviation d
                    WHERE {seen} GROUP BY 1, 2, 3""",
        "hexagons": f"SELECT d.h3_8, count(*) FROM deviations_deviation d WHERE {seen} GROUP BY 1",
    }


def forget() -> None:
    """Forget the answers this process keeps, so the next request is built afresh."""
    from lagesbild import data_version
    from lagesbild.interop import tiles

    tiles.kept.clear()
    if hasattr(data_version, "answers"):  # older code kept tiles only
        data_version.answers.clear()


class Measure:
    def __init__(self, client: Any, runs: int) -> None:
        self.client, self.runs = client, runs

    def get(self, url: str, params: dict[str, Any] | None = None) -> tuple[float, int, int, Any]:
        """Median ms, bytes sent (gzip), bytes before gzip, and the decoded body."""
        import orjson

        def call() -> Any:
            forget()
            return self.client.get(url, params or {}, headers={"Accept-Encoding": "gzip"})

        timings, response = timed(call, self.runs)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        sent = len(response.content)
        raw = gzip.decompress(response.content) if response.get("Content-Encoding") == "gzip" else response.content
        body = orjson.loads(raw) if response["Content-Type"].startswith(("application/json", "application/geo")) \
            else None
        return statistics.median(timings), sent, len(raw), body

    def many(self, urls: list[str], params: dict[str, Any]) -> tuple[float, int, int, int]:
        """Every URL once per run: median total ms, total bytes sent, before gzip, and the largest answer sent."""
        totals, sent, raw, largest = [], 0, 0, 0
        for run in range(self.runs + 1):
            started = time.perf_counter()
            sent = raw = largest = 0
            forget()
            for url in urls:
                response = self.client.get(url, params, headers={"Accept-Encoding": "gzip"})
                assert response.status_code == 200, (url, response.status_code)
                sent += len(response.content)
                largest = max(largest, len(response.content))
                raw += len(gzip.decompress(response.content) if response.get("Content-Encoding") == "gzip"
                           else response.content)
            if run:  # the first run warms up
                totals.append((time.perf_counter() - started) * 1000)
        return statistics.median(totals), sent, raw, largest


def throughput(url: str, cookie: str, seconds: float, threads: int = 8) -> float:
    done = [0]
    errors: list[str] = []
    stop = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < stop:
            request = urllib.request.Request(url, headers={"Cookie": cookie, "Accept-Encoding": "gzip"})  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (loopback)
                    answer.read()
                done[0] += 1
            except Exception as error:  # counted and reported
                errors.append(str(error))

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        print(f"  {len(errors)} errors, e.g. {errors[0]}")
    return done[0] / seconds


def sql_throughput(sql: str, params: list[Any], seconds: float, threads: int = 8) -> float:
    from django.db import connections

    done = [0]
    stop = time.perf_counter() + seconds

    def client() -> None:
        try:
            while time.perf_counter() < stop:
                with connections["default"].cursor() as cursor:
                    cursor.execute(sql, params)
                    cursor.fetchall()
                done[0] += 1
        finally:
            connections.close_all()

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return done[0] / seconds


def main() -> int:
    os.environ.setdefault("LAGESBILD_KEPT_MB", "0")  # gunicorn's processes too: every answer built afresh
    args = setup_django(__doc__ or "", runs=15, extra=[("--clients-seconds", float, 20.0)])
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    writing, forum, membership = load(args.count)
    vendor = connection.vendor
    client = Client()
    client.force_login(membership.user)
    measure = Measure(client, args.runs)
    api = f"/api/forums/{forum.slug}"
    since = (timezone.now() - dt.timedelta(days=30)).replace(microsecond=0)
    district = {"bbox": box_text(DISTRICT), "from": since.isoformat()}
    sql = hand_written(vendor)
    seen = [forum.pk, membership.organisation_id]
    table: list[tuple[str, str, str]] = []

    def row(*cells: str) -> None:
        print(f"  {' | '.join(cells)}", flush=True)  # as it comes: a long run shows its progress
        table.append((cells[0], cells[1], cells[2]))

    def size(sent: int, raw: int) -> str:
        return f"{sent / 1024:,.0f} KB ({raw / 1024:,.0f} KB)"

    # District, 30 days, its points: the list as the hand-written SQL reads it, 3,000 at most and not counted
    # (the map has the count from the aggregates it asks first; a first page that holds every point counts
    # them for free).
    list_sql = sql_timed(sql["list"], [*seen, since, DISTRICT[0], DISTRICT[2], DISTRICT[1], DISTRICT[3]], args.runs)
    listed = {**district, "limit": 3000, "count": "false"}
    ms, sent, raw, body = measure.get(f"{api}/deviations", listed)
    row(f"district, 30 days, {body['numberReturned']:,} points", f"{list_sql:.0f} ms",
        f"{ms:.0f} ms ({ms / list_sql:.1f}x), {size(sent, raw)}")
    # The same with the count (the API's default): what a client that asks for it pays.
    ms, sent, raw, body = measure.get(f"{api}/deviations", {**district, "limit": 3000})
    row(f"the same, counted ({body['numberMatched']:,} matched)", "-", f"{ms:.0f} ms ({ms / list_sql:.1f}x)")

    # The same, 8 clients at once, through gunicorn.
    query = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in listed.items())
    app, sql_rate = _served_throughput(args, client, f"{api}/deviations?{query}"), sql_throughput(
        sql["list"], [*seen, since, DISTRICT[0], DISTRICT[2], DISTRICT[1], DISTRICT[3]], args.clients_seconds)
    row("the same, 8 clients at once", f"{sql_rate:.1f} req/s", f"{app:.1f} req/s")

    # Whole city, all time, aggregates.
    width = (CITY[2] - CITY[0]) / 32
    grid_sql = sql_timed(sql["grid"], [width, width * 0.5, *seen], args.runs)
    ms, sent, raw, body = measure.get(f"{api}/deviations/aggregates", {"bbox": box_text(CITY)})
    row("whole city, all time, aggregates", f"{grid_sql:.0f} ms",
        f"{ms:.0f} ms, {size(sent, raw)}, {body['numberMatched']:,} counted")

    # Whole city, hexagons at map zoom 10 (the vector tiles a 1920 x 1080 screen asks for).
    hex_sql = sql_timed(sql["hexagons"], seen, args.runs)
    city_tiles = [f"{api}/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles_covering(CITY, 10)]
    ms, sent, raw, largest = measure.many(city_tiles, {"hexagons": "true"})
    row(f"whole city, hexagons at zoom 10 ({len(city_tiles)} tiles)", f"{hex_sql:.0f} ms (counts only)",
        f"{ms:.0f} ms, {size(sent, raw)}")

    # Whole city map view: the count first, then a page of the newest for the list (too many to draw).
    timings = []
    for run in range(args.runs + 1):
        forget()
        started = time.perf_counter()
        counted = measure.client.get(f"{api}/deviations/aggregates", {"bbox": box_text(CITY)},
                                     headers={"Accept-Encoding": "gzip"})
        listed = measure.client.get(f"{api}/deviations", {"bbox": box_text(CITY), "limit": 100, "count": "false"},
                                    headers={"Accept-Encoding": "gzip"})
        if run:
            timings.append((time.perf_counter() - started) * 1000)
    sent = len(counted.content) + len(listed.content)
    raw = sum(len(gzip.decompress(r.content) if r.get("Content-Encoding") == "gzip" else r.content)
              for r in (counted, listed))
    row("whole city map view, count then aggregates and list", "-",
        f"{statistics.median(timings):.0f} ms, {size(sent, raw)} in 2 requests")

    # Hexagons at zoom 12.5 on a 4K screen (3840 x 2160 CSS pixels over the busiest part of the city).
    box = screen_box(HOTSPOTS[1], 12.5, 3840, 2160)
    screen_tiles = [f"{api}/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles_covering(box, 12)]
    ms, sent, raw, largest = measure.many(screen_tiles, {"hexagons": "true"})
    row(f"hexagons at zoom 12.5 on a 4K screen ({len(screen_tiles)} tiles)", "-",
        f"{ms:.0f} ms, {size(sent, raw)}, largest answer {largest / 1024:,.0f} KB")

    print(f"\n{vendor}, {args.count:,} deviations ({settings.DATABASES['default']['ENGINE'].split('.')[-1]}), "
          f"medians of {args.runs}:\n")
    print("| view | hand-written SQL | Lägesbild |\n| --- | --- | --- |")
    for row in table:
        print(f"| {' | '.join(row)} |")
    save(f"city-{args.count}", {"database": vendor, "deviations": args.count, "write_seconds": round(writing, 1),
                                "table": table})
    return 0


def _served_throughput(args: Any, client: Any, path: str) -> float:
    """Answers a second from 8 threads against gunicorn (4 workers) serving this database on loopback."""
    from django.conf import settings

    env = {**os.environ, "LAGESBILD_DEBUG": "false", "LAGESBILD_ALLOWED_HOSTS": "127.0.0.1",
           "LAGESBILD_SSL_REDIRECT": "false",
           "PYTHONPATH": str(ROOT / "src")}
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        env["LAGESBILD_DATABASE_URL"] = f"sqlite:///{database['NAME']}"
    port = 18000 + os.getpid() % 1000
    log = Path(tempfile.mkdtemp()) / "gunicorn.log"
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "lagesbild.wsgi:application",
                               "--workers", "4", "--bind", f"127.0.0.1:{port}", "--log-file", str(log)],
                              env=env, cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/", timeout=2).read()  # noqa: S310 (loopback)
                break
            except Exception:  # still starting
                time.sleep(0.3)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        throughput(base + path, cookie, 3)  # warm every worker
        return throughput(base + path, cookie, args.clients_seconds)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())

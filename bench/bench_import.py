#!/usr/bin/env python3
"""Benchmark: importing a CSV of N deviations, as an organisation lead does: upload, the dry run, the import.

    .venv/bin/python bench/bench_import.py --count 100000
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_import.py --count 1000000 --runs 1

Goal (issue 12): 1,000,000 rows in at most 60 s on PostgreSQL. The file has the columns of Lägesbild's own
CSV export (Swedish Excel: semicolons, decimal commas) over the demo forum's area, two years of times and
every category. Reported: the file's size, and the seconds of each step (medians over --runs, each run
into a forum emptied of the previous run's rows), with the process's peak memory growth.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import tempfile
import time
from pathlib import Path

from bench_export import PeakMemory
from common import median, save, start

os.environ["LAGESBILD_TASKS"] = "immediate"  # the check and the import run in this process, timed


def write_file(path: Path, count: int, categories: list[str], bounds: tuple[float, float, float, float]) -> None:
    rng = random.Random(12)
    start_time = dt.datetime(2024, 1, 1)
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        writer.writerow(["Observerad", "Kategorinyckel", "Plats", "Beskrivning", "Allvarlighetsgrad", "Status",
                         "Longitud", "Latitud"])
        for n in range(count):
            when = start_time + dt.timedelta(seconds=rng.randrange(0, 700 * 86400))
            lon = rng.uniform(bounds[0], bounds[2])
            lat = rng.uniform(bounds[1], bounds[3])
            writer.writerow([when.strftime("%Y-%m-%d %H:%M:%S"), rng.choice(categories), f"Plats {n % 500}",
                             "Importerad ur benchmark", rng.choice(["Låg", "Medel", "Hög"]), "Ny",
                             f"{lon:.6f}".replace(".", ","), f"{lat:.6f}".replace(".", ",")])


def main() -> int:
    args, _load = start(__doc__ or "", runs=1, demo_count=0)
    from django.core.files.uploadedfile import UploadedFile
    from shapely.geometry import shape

    from lagesbild.deviations.models import Deviation
    from lagesbild.deviations.services import forum_categories
    from lagesbild.forums.models import Forum, Membership
    from lagesbild.interop import imports
    from lagesbild.interop.models import ImportBatch

    forum = Forum.objects.get(slug="bench")
    # A box well inside the forum's area, so no row is refused for lying outside it.
    area = shape(forum.area)
    inner = area.buffer(-0.01).envelope.intersection(area.buffer(-0.01))
    bounds = inner.representative_point().buffer(0.004).bounds
    lead = Membership.objects.select_related("forum").get(forum=forum, user__email="polis@farsta.demo")
    categories = [c.key for c in forum_categories(forum) if c.parent_id is not None]
    path = Path(tempfile.mkdtemp(prefix="lagesbild-bench-import-")) / "import.csv"
    write_file(path, args.count, categories, bounds)
    size_mb = path.stat().st_size / 2**20
    print(f"file: {args.count} rows, {size_mb:.0f} MB")
    steps: dict[str, list[float]] = {"upload": [], "check": [], "import": [], "total": []}
    growth = []
    for _ in range(args.runs):
        Deviation.objects.filter(forum=forum).delete()
        ImportBatch.objects.all().delete()
        with PeakMemory() as memory, open(path, "rb") as handle:
            began = time.perf_counter()
            batch = imports.upload(lead, UploadedFile(handle, name="import.csv", size=path.stat().st_size))
            uploaded = time.perf_counter()
            imports.save_mapping(lead, batch, batch.mapping["columns"], crs=4326, swapped=False,
                                 visibility="forum")  # runs the check at once (LAGESBILD_TASKS=immediate)
            checked = time.perf_counter()
            batch.refresh_from_db()
            assert batch.problem_count == 0 and batch.ok_count == args.count, (batch.problems[:3], batch.error)
            imports.start_import(lead, batch)
            done = time.perf_counter()
        batch.refresh_from_db()
        assert batch.status == ImportBatch.Status.IMPORTED, batch.error
        assert Deviation.objects.filter(import_batch=batch).count() == args.count
        steps["upload"].append(uploaded - began)
        steps["check"].append(checked - uploaded)
        steps["import"].append(done - checked)
        steps["total"].append(done - began)
        growth.append((memory.peak - memory.baseline) / 2**20)
    results = {"count": args.count, "file_mb": round(size_mb, 1),
               **{f"{name}_s": round(median(values), 1) for name, values in steps.items()},
               "peak_rss_growth_mb": round(max(growth))}
    print(", ".join(f"{name} {median(values):.1f} s" for name, values in steps.items())
          + f"; peak memory +{max(growth):.0f} MB")
    save(f"import-{args.count}", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

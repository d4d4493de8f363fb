"""What the benchmarks share: a temporary database (SQLite, or the PostgreSQL that LAGESBILD_DATABASE_URL
names) with a demo forum of N deviations, timing, and where results are written."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def setup_django(doc: str, runs: int, extra: list[tuple[str, type, Any]] | None = None) -> argparse.Namespace:
    """Parse --count, --runs (and `extra` options: name, type, default) and set up Django on a fresh database
    (SQLite in a temporary file, or the PostgreSQL that LAGESBILD_DATABASE_URL names), migrated."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=runs)
    for name, kind, default in extra or []:
        parser.add_argument(name, type=kind, default=default)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lagesbild-bench-"))
    if not os.environ.get("LAGESBILD_DATABASE_URL"):
        os.environ["LAGESBILD_DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.setdefault("LAGESBILD_VAR_DIR", str(workdir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lagesbild.settings")
    os.environ.setdefault("LAGESBILD_SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("LAGESBILD_PROJECT_DIR", str(ROOT))
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    return args


def start(doc: str, runs: int, demo_count: int | None = None) -> tuple[argparse.Namespace, float]:
    """Parse --count and --runs, set up Django on a fresh database and load the forum `bench` (with --count
    deviations, or `demo_count`). Returns the arguments and how long loading took, in seconds."""
    args = setup_django(doc, runs)
    from django.db import connection

    from lagesbild.demo import create_demo_forum

    started = time.perf_counter()
    create_demo_forum(count=args.count if demo_count is None else demo_count, slug="bench", name="Benchmark")
    load_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics for the planner, as a long-running database has
    print(f"{connection.vendor}: {args.count if demo_count is None else demo_count} deviations loaded in "
          f"{load_seconds:.1f} s")
    return args, load_seconds


def timed(call: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Milliseconds for each of `runs` calls after one warm-up, and the last call's result."""
    result = call()
    timings = []
    for _ in range(runs):
        begin = time.perf_counter()
        result = call()
        timings.append((time.perf_counter() - begin) * 1000)
    return timings, result


def median(timings: list[float]) -> float:
    return statistics.median(timings)


SERVER_SETTINGS = ["server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers",
                   "effective_cache_size", "work_mem", "max_parallel_workers_per_gather", "max_connections"]


def server_settings() -> dict[str, str]:
    """PostgreSQL's settings that move the figures most, saved with them: a run on the tests' quick cluster
    (fsync off) is not one on a cluster set up as docs/deployment.md says (`with_postgres.py --as-deployed`)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        shown = {}
        for name in SERVER_SETTINGS:
            cursor.execute(f"SHOW {name}")  # names from the list above, not from input
            shown[name] = cursor.fetchone()[0]
    # The machine it ran on, which the figures depend on as much.
    shown["cores"] = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    shown["memory_mb"] = str(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20)
    return shown


def save(name: str, results: dict[str, Any]) -> None:
    from django.db import connection

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    shown = server_settings()  # none on SQLite
    results = {**results, "server_settings": shown} if shown else results
    (out / f"{name}-{connection.vendor}.json").write_text(json.dumps(results, indent=2))

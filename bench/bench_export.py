#!/usr/bin/env python3
"""Benchmark: exporting every deviation of a forum, in each format, through the whole Django stack.

    .venv/bin/python bench/bench_export.py --count 100000
    .venv/bin/python bench/bench_export.py --count 1000000 --runs 1
    .venv/bin/python scripts/with_postgres.py -- .venv/bin/python bench/bench_export.py --count 1000000 --runs 1

Goal (issue 12): 1,000,000 rows export without the server's memory growing with them. For each format it
reports the time to the last byte (median) and the peak growth of the process's resident memory while the
export runs, sampled every 20 ms; compare the growth at 100,000 and at 1,000,000 rows.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from common import median, save, start


class PeakMemory:
    """The largest resident set size seen while it runs, sampled from /proc by a thread."""

    def __init__(self) -> None:
        self.peak = self.baseline = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @staticmethod
    def _rss() -> int:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * 4096

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def main() -> int:
    args, load_seconds = start(__doc__ or "", runs=3)
    from django.test import Client

    from lagesbild.forums.models import User

    client = Client()
    client.force_login(User.objects.get(email="samordnare@farsta.demo"))
    results: dict[str, object] = {"count": args.count, "load_seconds": round(load_seconds, 1)}
    for fmt in ("csv", "geojson", "gpkg", "xlsx"):
        if fmt == "xlsx" and args.count > 1_048_575:
            continue  # more rows than an Excel sheet holds: refused, by design
        timings, growth, size, rows = [], [], 0, 0
        for _ in range(args.runs):
            with PeakMemory() as memory:
                began = time.perf_counter()
                response = client.get("/api/forums/bench/export", {"format": fmt})
                size = 0
                chunks = response.streaming_content  # type: ignore[attr-defined]
                for chunk in chunks:
                    size += len(chunk)
                timings.append((time.perf_counter() - began) * 1000)
            response.close()
            rows = int(response["X-Total-Count"])
            growth.append((memory.peak - memory.baseline) / 2**20)
        results[fmt] = {"median_ms": round(median(timings)), "rows": rows, "megabytes": round(size / 2**20, 1),
                        "peak_rss_growth_mb": round(max(growth), 1)}
        print(f"{fmt:8} {rows} rows: {median(timings) / 1000:.1f} s, {size / 2**20:.1f} MB, "
              f"peak memory +{max(growth):.1f} MB")
    save(f"export-{args.count}", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The live picture under many open maps: N server-sent event streams on ONE app process (gunicorn, gthread
worker, as docs/deployment.md runs it), and how soon a new deviation reaches all of them.

The deviations are reported by this script, a process of its own, as another app process or the worker
would: on PostgreSQL the event reaches the app process by NOTIFY. Reports are a second apart, so that each
is timed on its own. Reported: latency from the report's commit to each stream's receipt (median, p95,
max, over every stream and report), the app process's memory per open stream, and the database
connections the open streams hold.

    python scripts/with_postgres.py -- .venv/bin/python bench/bench_live.py --streams 200 --reports 20
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Streams:
    """N open streams read by one thread; each message's arrival time is noted per deviation id."""

    def __init__(self, port: int, cookies: list[str]) -> None:
        self.selector = selectors.DefaultSelector()
        self.arrivals: dict[int, list[float]] = {}
        self.lock = threading.Lock()
        self.buffers: dict[socket.socket, bytes] = {}
        for cookie in cookies:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall((f"GET /f/bench/live HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                          f"Cookie: {cookie}\r\n\r\n").encode())
            sock.setblocking(False)
            self.buffers[sock] = b""
            self.selector.register(sock, selectors.EVENT_READ)
        self.opened = 0
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopped = True
        self.thread.join()
        for sock in self.buffers:
            sock.close()

    def run(self) -> None:
        while not self.stopped:
            for key, _ in self.selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                data = sock.recv(65536)
                now = time.monotonic()
                if not data:
                    self.selector.unregister(sock)
                    continue
                buffer = self.buffers[sock] + data
                if b"HTTP/1.1 200" in buffer[:20] and b"retry:" in buffer and sock not in getattr(self, "_ok", set()):
                    self._ok = getattr(self, "_ok", set()) | {sock}
                    self.opened += 1
                while b"\n\n" in buffer:
                    message, buffer = buffer.split(b"\n\n", 1)
                    for line in message.split(b"\n"):
                        if line.startswith(b'data: {"id": '):
                            deviation = int(line[len(b'data: {"id": '):].split(b",")[0])
                            with self.lock:
                                self.arrivals.setdefault(deviation, []).append(now)
                self.buffers[sock] = buffer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--reports", type=int, default=20)
    args = parser.parse_args(sys.argv[1:])
    sys.argv = [*sys.argv[:1], "--count", "500"]
    from common import save, start

    start(__doc__ or "", runs=1)
    import datetime as dt

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from lagesbild.deviations import services
    from lagesbild.forums.models import Forum, Membership, Organisation, Role
    from lagesbild.forums.services import add_member

    forum = Forum.objects.get(slug="bench")
    Forum.objects.filter(pk=forum.pk).update(require_two_factor=False)
    organisations = list(Organisation.objects.filter(forum=forum))
    cookies = []
    for n in range(args.streams):
        member = add_member(forum, email=f"live{n}@bench.test", organisation=organisations[n % len(organisations)],
                            role=Role.VIEWER, password="not-used-here")
        client = Client()
        client.force_login(member.user)
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}")
    reporter = Membership.objects.filter(forum=forum, role=Role.COORDINATOR).first()
    assert reporter is not None

    port = free_port()
    env = {**os.environ, "LAGESBILD_LIVE_MAX_CONNECTIONS": str(args.streams + 10), "PYTHONPATH": str(ROOT / "src")}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "lagesbild.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--worker-class", "gthread", "--threads", str(args.streams + 16),
         "--log-level", "warning"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        [worker] = children(server.pid)
        # Warm: the worker loads the app's views and a first stream's code before memory is measured.
        warm = Streams(port, cookies[:1])
        while warm.opened < 1:
            time.sleep(0.1)
        warm.close()
        time.sleep(1)
        before = rss_kib(worker)
        streams = Streams(port, cookies)
        deadline = time.monotonic() + 60
        while streams.opened < args.streams:
            assert time.monotonic() < deadline, f"only {streams.opened} of {args.streams} streams opened"
            time.sleep(0.1)
        time.sleep(2)
        after = rss_kib(worker)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                db_connections = cursor.fetchone()[0] - 1  # this script's own
            else:
                db_connections = None

        latencies: list[float] = []
        missing = 0
        for n in range(args.reports):
            deviation = services.report_deviation(reporter, services.DeviationInput(
                category="graffiti", lon=18.09, lat=59.244, observed_at=timezone.now() - dt.timedelta(minutes=1),
                place_name=f"Bänk {n}"))
            committed = time.monotonic()  # the event is written and notified when report_deviation returns
            time.sleep(1.0)
            with streams.lock:
                arrived = streams.arrivals.get(deviation.pk, [])
            missing += args.streams - len(arrived)
            latencies.extend(t - committed for t in arrived)
        streams.close()
        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))] * 1000
        results = {
            "streams": args.streams, "reports": args.reports, "received": len(latencies), "missing": missing,
            "latency_ms": {"median": statistics.median(latencies) * 1000, "p95": p95,
                           "max": latencies[-1] * 1000},
            "rss_kib": {"before": before, "after": after, "per_stream": (after - before) / args.streams},
            "database_connections_while_open": db_connections,
        }
        print(f"{args.streams} streams on one gunicorn process ({connection.vendor}), {args.reports} reports:")
        print(f"  received {len(latencies)} of {args.streams * args.reports}, missing {missing}")
        print(f"  latency from commit: median {results['latency_ms']['median']:.0f} ms, p95 {p95:.0f} ms, "
              f"max {results['latency_ms']['max']:.0f} ms")
        print(f"  memory: {before / 1024:.1f} MiB before, {after / 1024:.1f} MiB with the streams open, "
              f"{results['rss_kib']['per_stream']:.0f} KiB per stream")
        if db_connections is not None:
            print(f"  database connections held by the app process while the streams wait: {db_connections}")
        save("live", results)
        return 0 if missing == 0 and p95 <= 2000 else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())

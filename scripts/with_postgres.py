#!/usr/bin/env python3
"""Run a command against a throw-away PostgreSQL 15 + PostGIS 3 server.

    python scripts/with_postgres.py -- pytest
    python scripts/with_postgres.py --as-deployed -- python bench/load_test.py

Starts a private cluster on a free loopback port (as the `postgres` user when run as root, since initdb
refuses root), sets LAGESBILD_DATABASE_URL for the command, and removes the cluster afterwards.

By default the cluster is set up for the tests' speed: it does not wait for the disk (fsync off), which a
server that must keep what it acknowledged never does. `--as-deployed` starts it as docs/deployment.md sets up
PostgreSQL for Lägesbild instead (durable, its memory and parallel query sized to this machine), for the
benchmarks and the load test, whose figures should be what an installation gets.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("LAGESBILD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


# For the tests: quick, and nothing to keep after a crash.
FOR_TESTS = ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=250"]


def as_deployed(memory_bytes: int, cores: int) -> list[str]:
    """The settings docs/deployment.md gives for a server of this memory and this many cores.

    Durable, as PostgreSQL's defaults are; a quarter of the memory for shared buffers and three quarters as the
    cache the planner may count on (never below PostgreSQL's own defaults); sorting and grouping in memory;
    room for the load test's 4 x 50 threads. On two cores or fewer, no parallel query: its extra processes
    compete for the cores that the other members' requests need.
    """
    megabytes = memory_bytes // 2**20
    settings = [f"shared_buffers={max(megabytes // 4, 128)}MB",
                f"effective_cache_size={max(megabytes * 3 // 4, 512)}MB", "work_mem=32MB", "max_connections=250"]
    if cores <= 2:
        settings.append("max_parallel_workers_per_gather=0")
    return settings


def _cgroup_limit(path: str) -> str | None:
    try:
        return Path(path).read_text().split("\n")[0].strip()
    except OSError:
        return None


def machine() -> tuple[int, int]:
    """The memory in bytes and the cores this process may use: the machine's, or less in a container whose
    control group limits them (a container of 2 cores on a larger host is sized as 2 cores)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = _cgroup_limit("/sys/fs/cgroup/memory.max") or _cgroup_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    if limit and limit.isdigit():
        memory = min(memory, int(limit))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = (_cgroup_limit("/sys/fs/cgroup/cpu.max") or "max").split()
    if quota[0].isdigit() and len(quota) == 2 and quota[1].isdigit():
        cores = min(cores, max(1, -(-int(quota[0]) // int(quota[1]))))  # rounded up: 1.5 cores is 2
    return memory, cores


def parse(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """The settings and the command, or None when the arguments are not `[--as-deployed] -- command ...`. An
    unknown option is refused rather than ignored: a mistyped --as-deployed would otherwise run the quick
    cluster and pass its figures off as an installation's."""
    if "--" not in argv[1:]:
        return None
    split = argv.index("--", 1)
    options, command = argv[1:split], argv[split + 1:]
    if not command or any(option != "--as-deployed" for option in options):
        return None
    return (as_deployed(*machine()) if options else FOR_TESTS), command


def on_tmpfs(path: Path, mounts: str | None = None) -> bool:
    """Whether `path` lies on a file system in memory, where fsync costs nothing. By the mount that holds it:
    the longest mount point that is the path or a folder above it (the last mounted, if two are the same)."""
    where = str(path.resolve())
    best, kind = "", ""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:  # not Linux: nothing to tell
            return False
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind in {"tmpfs", "ramfs"}


def main(argv: list[str]) -> int:
    parsed = parse(argv)
    if parsed is None:
        print(__doc__, file=sys.stderr)
        return 2
    settings, command = parsed
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            print(f"PostgreSQL 15 is not installed ({PG_BIN / tool} missing). Run 'make system-packages'.",
                  file=sys.stderr)
            return 1
    data_dir = Path(tempfile.mkdtemp(prefix="lagesbild-pg-"))
    if settings is not FOR_TESTS and on_tmpfs(data_dir):
        print(f"Warning: {data_dir} is in memory (tmpfs), so writes will not wait for a disk as an installation's "
              "do. Set TMPDIR to a folder on disk.", file=sys.stderr)
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    port = free_port()
    log = data_dir / "server.log"
    try:
        subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(data_dir / "data"), "-U", "postgres",
                                    "-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL)
        options = f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 " + " ".join(f"-c {one}" for one in settings)
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data_dir / "data"), "-l", str(log),
                                    "-o", options, "-w", "-t", "60", "start"]),
                       check=True, stdout=subprocess.DEVNULL)
        # An empty database for benchmarks and manual use; the test suite makes its own test_lagesbild.
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "lagesbild"],
                       check=True)
        env = dict(os.environ, LAGESBILD_DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/lagesbild")
        print(f"PostgreSQL 15 started on 127.0.0.1:{port} ({', '.join(settings)})", flush=True)
        return subprocess.run(command, env=env).returncode
    except subprocess.CalledProcessError as exc:
        print(f"Could not start PostgreSQL: {exc}", file=sys.stderr)
        if log.exists():
            print(log.read_text(), file=sys.stderr)
        return 1
    finally:
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data_dir / "data"), "-m", "fast", "-w",
                                    "stop"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""scripts/with_postgres.py: the throw-away PostgreSQL for the tests, and, with --as-deployed, for the benchmarks
and the load test, set up as docs/deployment.md sets up an installation's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import with_postgres_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.pure
def test_as_deployed_sizes_memory_and_parallel_query_to_the_machine() -> None:
    tools = with_postgres_script()
    two_cores = tools.as_deployed(24 * 2**30, 2)
    assert "shared_buffers=6144MB" in two_cores and "effective_cache_size=18432MB" in two_cores
    assert "work_mem=32MB" in two_cores and "max_parallel_workers_per_gather=0" in two_cores
    # More cores: PostgreSQL's own parallel query stays.
    assert not [s for s in tools.as_deployed(24 * 2**30, 8) if s.startswith("max_parallel")]
    # A small machine gets PostgreSQL's own defaults, not less.
    assert "shared_buffers=128MB" in tools.as_deployed(256 * 2**20, 1)
    # Durable: none of the tests' shortcuts.
    assert not [s for s in two_cores if s.split("=")[0] in {"fsync", "synchronous_commit", "full_page_writes"}]
    assert "fsync=off" in tools.FOR_TESTS


@pytest.mark.pure
def test_the_options_are_checked_and_the_command_keeps_its_own() -> None:
    parse = with_postgres_script().parse
    settings, command = parse(["with_postgres.py", "--as-deployed", "--", "load_test.py", "--as-deployed"])
    assert "work_mem=32MB" in settings and command == ["load_test.py", "--as-deployed"]
    tests, command = parse(["with_postgres.py", "--", "pytest", "-x"])
    assert "fsync=off" in tests and command == ["pytest", "-x"]
    # A mistyped option is refused, not read as "the tests' cluster"; so is a missing command.
    assert parse(["with_postgres.py", "--as-deploy", "--", "pytest"]) is None
    assert parse(["with_postgres.py", "--as-deployed", "--"]) is None
    assert parse(["with_postgres.py", "pytest"]) is None


@pytest.mark.pure
def test_a_folder_in_memory_is_told_by_the_mount_that_holds_it() -> None:
    on_tmpfs = with_postgres_script().on_tmpfs
    mounts = ("/dev/vda1 / ext4 rw 0 0\ntmpfs /s tmpfs rw 0 0\ntmpfs /scratch tmpfs rw 0 0\n"
              "/dev/vdb /scratch/disk ext4 rw 0 0\n")
    assert on_tmpfs(Path("/scratch/lagesbild-pg-1"), mounts)
    assert not on_tmpfs(Path("/scratch/disk/lagesbild-pg-1"), mounts)  # a disk mounted inside the tmpfs
    assert not on_tmpfs(Path("/srv/lagesbild-pg-1"), "/dev/vda1 / ext4 rw 0 0\ntmpfs /s tmpfs rw 0 0\n")
    # The same mount point twice: the later mount is the one in effect.
    assert not on_tmpfs(Path("/scratch/x"), "tmpfs /scratch tmpfs rw 0 0\n/dev/vdb /scratch ext4 rw 0 0\n")


# Under the PostgreSQL pass: it needs PostgreSQL's programs, and starts a cluster of its own beside the suite's.
@pytest.mark.postgresql
def test_a_cluster_started_as_deployed_runs_with_those_settings() -> None:
    asked = ["fsync", "synchronous_commit", "work_mem", "max_parallel_workers_per_gather", "max_connections",
             "shared_buffers"]
    show = ("import json, os, psycopg; c = psycopg.connect(os.environ['LAGESBILD_DATABASE_URL']); "
            f"print(json.dumps({{n: c.execute('SHOW ' + n).fetchone()[0] for n in {asked!r}}}))")
    run = subprocess.run([sys.executable, "scripts/with_postgres.py", "--as-deployed", "--", sys.executable, "-c",
                          show], cwd=ROOT, capture_output=True, text=True, timeout=180,
                         env={k: v for k, v in os.environ.items() if k != "LAGESBILD_DATABASE_URL"})
    assert run.returncode == 0, run.stderr[-2000:]
    shown = json.loads(run.stdout.strip().splitlines()[-1])
    tools = with_postgres_script()
    memory, cores = tools.machine()
    assert shown["fsync"] == "on" and shown["synchronous_commit"] == "on"
    assert shown["work_mem"] == "32MB" and shown["max_connections"] == "250"
    assert shown["max_parallel_workers_per_gather"] == ("0" if cores <= 2 else "2")
    quarter = max(memory // 2**20 // 4, 128)
    # PostgreSQL shows a whole number of gigabytes as GB.
    wanted = f"{quarter // 1024}GB" if quarter % 1024 == 0 else f"{quarter}MB"
    assert shown["shared_buffers"] == wanted

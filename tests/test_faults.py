"""A crash during a write storm: the app server, or PostgreSQL itself, is killed with SIGKILL (kill -9) while
members report, some with photos, and started again. Every report the app acknowledged (201) is there
afterwards, with its photos; the database is whole (SQLite in WAL mode, or PostgreSQL); the pre-aggregated counts
still equal counting the rows; and the photo files of reports that never committed are swept away, leaving no
file without its row. While PostgreSQL is down, the app answers 503 (try again), never 500.

The app's kill runs against the suite's own database: SQLite's file, or the PostgreSQL test database. The
PostgreSQL kill needs a cluster of its own (the suite's processes share theirs), with production's durability
settings, into which the test database is copied.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db import connection, connections

from lagesbild.forums.models import ApiToken
from tests.conftest import image_bytes, make_world, with_postgres_script

pytestmark = pytest.mark.django_db(transaction=True)
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
ROOT = Path(__file__).resolve().parents[1]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """gunicorn serving the app on the test database, in a process group of its own (so kill -9 takes the
    master and every worker at once, as a crash or an OOM kill of the whole service would)."""

    def __init__(self, tmp: Path, database_url: str | None = None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "gunicorn.log"
        self.env = {**os.environ, "LAGESBILD_DATABASE_URL": database_url or _database_url(),
                    "LAGESBILD_MEDIA_ROOT": str(settings.MEDIA_ROOT), "LAGESBILD_VAR_DIR": str(tmp),
                    "LAGESBILD_SECRET_KEY": "fault-test-only", "LAGESBILD_ALLOWED_HOSTS": "127.0.0.1",
                    "LAGESBILD_DEBUG": "false", "LAGESBILD_SSL_REDIRECT": "false",
                    "DJANGO_SETTINGS_MODULE": "lagesbild.settings"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [GUNICORN, "lagesbild.wsgi:application", "--workers", "2", "--threads", "4",
                 "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "1"],
                env=self.env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise AssertionError("gunicorn did not start: " + self.log.read_text()[-2000:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)


class Storm:
    """Members reporting as fast as they can, a third of them with a photo; what was acknowledged, by id."""

    def __init__(self, base: str, key: str) -> None:
        self.url = f"{base}/api/forums/farsta/deviations"
        self.headers = {"Authorization": f"Bearer {key}"}
        self.acknowledged: dict[int, int] = {}  # deviation id -> photos sent with it
        self.failed = 0
        self.refusals: Counter[int] = Counter()  # status -> how many, of the answers other than 201
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.photo = image_bytes()

    def member(self, number: int) -> None:
        sent = 0
        while not self.stop.is_set():
            sent += 1
            body = {"category": "graffiti", "lon": 18.09 + number * 0.001, "lat": 59.244 + sent * 0.00001,
                    "description": f"Storm {number}:{sent}"}
            with_photo = sent % 3 == 0
            try:
                if with_photo:
                    answer = requests.post(self.url, headers=self.headers, data={k: str(v) for k, v in body.items()},
                                           files={"photos": ("foto.jpg", self.photo, "image/jpeg")}, timeout=30)
                else:
                    answer = requests.post(self.url, headers=self.headers, json=body, timeout=30)
            except requests.RequestException:
                with self.lock:
                    self.failed += 1
                time.sleep(0.05)
                continue
            if answer.status_code == 201:
                with self.lock:
                    self.acknowledged[answer.json()["id"]] = 1 if with_photo else 0
            else:
                with self.lock:
                    self.failed += 1
                    self.refusals[answer.status_code] += 1
                time.sleep(0.05)

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def wait_for(self, more: int, timeout: float = 90) -> None:
        goal = self.count() + more
        deadline = time.monotonic() + timeout
        while self.count() < goal:
            assert time.monotonic() < deadline, f"only {self.count()} of {goal} reports acknowledged"
            time.sleep(0.05)


# What a crash left, read by a process of its own on the database the app wrote (the suite's, or the private
# cluster): the deviations and photo rows, photo files without a row after the sweep (retention does it daily,
# for files over an hour old), SQLite's integrity check, and the kept counts against counting them again.
AFTER_THE_CRASH = """
import datetime as dt, json
from pathlib import Path
import django
django.setup()
from django.conf import settings
from django.db import connection
from lagesbild.deviations import counts
from lagesbild.deviations.models import Deviation, DeviationCount, Photo
from lagesbild.deviations.retention import remove_orphan_photos
root = Path(settings.MEDIA_ROOT)
photos = list(Photo.objects.values_list("deviation_id", "image", "thumbnail"))
named = {name for _id, image, thumbnail in photos for name in (image, thumbnail)}
remove_orphan_photos(older_than=dt.timedelta(0))
integrity = "ok"
if connection.vendor == "sqlite":
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA integrity_check")
        integrity = cursor.fetchone()[0]
fields = ("resolution", "span", "period", "cell", "category", "count")
kept = sorted(DeviationCount.objects.exclude(count=0).values_list(*fields))
counts.rebuild(connection)
print(json.dumps({
    "vendor": connection.vendor,
    "deviations": list(Deviation.objects.values_list("id", flat=True)),
    "with_photos": [deviation for deviation, _image, _thumbnail in photos],
    "files_missing": sorted(name for name in named if not (root / name).is_file()),
    "files_without_row": sorted(p.relative_to(root).as_posix() for p in (root / "photos").rglob("*")
                                if p.is_file() and p.relative_to(root).as_posix() not in named),
    "integrity": integrity,
    "counts": len(kept),
    "counts_equal_recount": kept == sorted(DeviationCount.objects.exclude(count=0).values_list(*fields)),
}))
"""


def after_the_crash(server: Server, vendor: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", AFTER_THE_CRASH], env=server.env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["vendor"] == vendor  # read where the app wrote
    return found


def check_nothing_acknowledged_was_lost(storm: Storm, found: dict[str, Any]) -> None:
    missing = sorted(set(storm.acknowledged) - set(found["deviations"]))
    assert missing == [], f"acknowledged but lost: {missing}"
    with_photos = [pk for pk, photos in storm.acknowledged.items() if photos]
    assert with_photos
    assert sorted(pk for pk in found["with_photos"] if pk in storm.acknowledged) == sorted(with_photos)
    assert found["files_missing"] == []
    assert found["files_without_row"] == []
    assert found["integrity"] == "ok"
    assert found["counts"] > 0 and found["counts_equal_recount"]


def storm_through(server: Server, key: str, crash: Any, restart: Any) -> Storm:
    """Four members reporting; `crash` once a dozen reports are in, `restart`, and a dozen more."""
    storm = Storm(server.base, key)
    members = [threading.Thread(target=storm.member, args=(n,)) for n in range(4)]
    for thread in members:
        thread.start()
    try:
        storm.wait_for(12)
        crash()  # mid-storm: requests in flight die with it
        before_restart = storm.count()
        restart()
        storm.wait_for(12)
    finally:
        storm.stop.set()
        for thread in members:
            thread.join()
    assert storm.failed > 0, "the crash should have failed some requests in flight"
    assert storm.count() > before_restart > 0
    return storm


def test_kill_9_of_the_app_during_a_write_storm_loses_nothing_acknowledged(tmp_path: Path) -> None:
    world = make_world()
    _token, key = ApiToken.issue(world.housing_reporter, "storm")
    connections.close_all()  # the server's processes write; this one only reads afterwards
    server = Server(tmp_path)
    server.start()
    try:
        storm = storm_through(server, key, crash=server.kill, restart=server.start)
    finally:
        server.kill(signal.SIGTERM)
    check_nothing_acknowledged_was_lost(storm, after_the_crash(server, connection.vendor))


def test_kill_9_of_the_worker_mid_task_and_the_next_worker_runs_it_again(tmp_path: Path) -> None:
    """A worker killed while it runs a task leaves the task RUNNING; the worker started after it (as the
    service restarts it) puts the task back in the queue and runs it to the end."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from tests.tasks_for_tests import slow_the_first_time

    marker = tmp_path / "started"
    result = slow_the_first_time.enqueue(str(marker))
    connections.close_all()
    env = {**Server(tmp_path).env, "PYTHONPATH": str(ROOT)}  # the worker imports the test's task
    lagesbild = str(Path(sys.executable).parent / "lagesbild")
    with (tmp_path / "worker.log").open("ab") as log:
        worker = subprocess.Popen([lagesbild, "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.2"],
                                  env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
            time.sleep(0.1)
        os.killpg(worker.pid, signal.SIGKILL)  # in the middle of the task
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert DBTaskResult.objects.get(pk=result.id).status == TaskResultStatus.RUNNING  # held by a dead worker
    again = subprocess.run([lagesbild, "db_worker", "--batch", "--no-startup-delay"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Put 1 tasks back in the queue" in again.stdout
    done = DBTaskResult.objects.get(pk=result.id)
    assert (done.status, done.return_value) == (TaskResultStatus.SUCCESSFUL, "again")
    assert len(done.worker_ids) == 2  # the dead worker and the one that finished it


class Cluster:
    """A PostgreSQL cluster of this test's own, with PostgreSQL's default durability (fsync and synchronous
    commit on, as docs/deployment.md runs it), holding a copy of the test database."""

    def __init__(self, tmp: Path) -> None:
        self.tools = with_postgres_script()
        self.bin = self.tools.PG_BIN
        self.dir = Path(tempfile.mkdtemp(prefix="lagesbild-kill-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = self.tools.free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/lagesbild"
        subprocess.run(self.tools.as_postgres([str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U",
                                               "postgres", "-A", "trust", "-E", "UTF8", "--locale", "C.UTF-8"]),
                       check=True, capture_output=True)

    def start(self) -> None:
        # pg_ctl starts the server in a session of its own: its process group is the postmaster's pid.
        subprocess.run(self.tools.as_postgres([
            str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w",
            "-t", "60", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"]),
            check=True, capture_output=True)

    def copy(self, settings_dict: dict[str, Any]) -> None:
        """The test database (migrated, with the world in it), dumped and restored here."""
        dump = self.dir / "copy.dump"
        source = {**os.environ, "PGPASSWORD": settings_dict.get("PASSWORD") or ""}
        subprocess.run([str(self.bin / "pg_dump"), "-Fc", "-h", settings_dict["HOST"], "-p", str(settings_dict["PORT"]),
                        "-U", settings_dict["USER"], "-f", str(dump), settings_dict["NAME"]], env=source, check=True)
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "lagesbild"], check=True)
        subprocess.run([str(self.bin / "pg_restore"), "--no-owner", "--exit-on-error", "-h", "127.0.0.1", "-p",
                        str(self.port), "-U", "postgres", "-d", "lagesbild", str(dump)], check=True)

    def kill(self) -> None:
        """kill -9 of the postmaster and every backend at once, as an OOM kill of the service would."""
        postmaster = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        os.killpg(postmaster, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(postmaster, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise AssertionError("PostgreSQL survived kill -9")

    def remove(self) -> None:
        subprocess.run(self.tools.as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m",
                                               "immediate", "-w", "stop"]), capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.postgresql
def test_kill_9_of_postgresql_during_a_write_storm_loses_nothing_acknowledged(tmp_path: Path) -> None:
    world = make_world()
    _token, key = ApiToken.issue(world.housing_reporter, "storm")
    connections.close_all()
    cluster = Cluster(tmp_path)
    try:
        cluster.start()
        cluster.copy(connection.settings_dict)
        server = Server(tmp_path, cluster.url)
        server.start()

        def crash() -> None:
            cluster.kill()
            time.sleep(1)  # members keep reporting to an app without its database

        try:
            storm = storm_through(server, key, crash=crash, restart=cluster.start)
        finally:
            server.kill(signal.SIGTERM)
        # PostgreSQL recovered from its write-ahead log; the app reconnected by itself.
        assert "database system was interrupted" in (cluster.dir / "server.log").read_text()
        assert set(storm.refusals) == {503}, f"while the database was down: {dict(storm.refusals)}"
        check_nothing_acknowledged_was_lost(storm, after_the_crash(server, "postgresql"))
    finally:
        cluster.remove()

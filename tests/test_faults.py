"""A crash during a write storm: the app server is killed with SIGKILL (kill -9) while members report, some with
photos, and started again. Every report it acknowledged (201) is there afterwards, with its photos; the database
is whole (SQLite in WAL mode, or PostgreSQL); the pre-aggregated counts still equal counting the rows; and the
photo files of reports that never committed are swept away, leaving no file without its row.

Runs against the suite's own database: SQLite's file, or the PostgreSQL test database.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection, connections

from lagesbild.deviations import counts
from lagesbild.deviations.models import Deviation, DeviationCount, Photo
from lagesbild.deviations.retention import remove_orphan_photos
from lagesbild.forums.models import ApiToken
from tests.conftest import image_bytes, make_world

pytestmark = pytest.mark.django_db(transaction=True)
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


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

    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "gunicorn.log"
        self.env = {**os.environ, "LAGESBILD_DATABASE_URL": _database_url(),
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


def test_kill_9_of_the_app_during_a_write_storm_loses_nothing_acknowledged(tmp_path: Path) -> None:
    world = make_world()
    _token, key = ApiToken.issue(world.housing_reporter, "storm")
    connections.close_all()  # the server's processes write; this one only reads afterwards
    server = Server(tmp_path)
    server.start()
    storm = Storm(server.base, key)
    members = [threading.Thread(target=storm.member, args=(n,)) for n in range(4)]
    for thread in members:
        thread.start()
    try:
        storm.wait_for(12)
        server.kill()  # mid-storm: requests in flight die with it
        before_restart = storm.count()
        server.start()
        storm.wait_for(12)
    finally:
        storm.stop.set()
        for thread in members:
            thread.join()
        server.kill(signal.SIGTERM)
    assert storm.failed > 0, "the kill should have failed some requests in flight"
    assert storm.count() > before_restart > 0

    stored = set(Deviation.objects.values_list("id", flat=True))
    missing = sorted(set(storm.acknowledged) - stored)
    assert missing == [], f"acknowledged but lost: {missing}"
    with_photos = [pk for pk, photos in storm.acknowledged.items() if photos]
    assert with_photos
    photo_rows = Photo.objects.filter(deviation_id__in=with_photos)
    assert sorted(photo_rows.values_list("deviation_id", flat=True)) == sorted(with_photos)
    root = Path(settings.MEDIA_ROOT)
    for image, thumbnail in Photo.objects.values_list("image", "thumbnail"):
        assert (root / image).is_file() and (root / thumbnail).is_file(), image

    # Files of reports that died before they committed are swept (retention does it daily, for files over an
    # hour old); then every photo file has its row.
    remove_orphan_photos(older_than=dt.timedelta(0))
    named = {name for pair in Photo.objects.values_list("image", "thumbnail") for name in pair}
    on_disk = {p.relative_to(root).as_posix() for p in (root / "photos").rglob("*") if p.is_file()}
    assert on_disk == named

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA integrity_check")
            assert cursor.fetchone() == ("ok",)
    kept = sorted(DeviationCount.objects.exclude(count=0).values_list(
        "resolution", "span", "period", "cell", "category", "count"))
    counts.rebuild(connection)
    assert kept == sorted(DeviationCount.objects.exclude(count=0).values_list(
        "resolution", "span", "period", "cell", "category", "count"))

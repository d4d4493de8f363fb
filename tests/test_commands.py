"""The `lagesbild` command's own subcommands."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import ApiToken, Forum, Membership
from lagesbild.meetings.models import Meeting

pytestmark = pytest.mark.django_db


def run(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    finally:
        sys.stdin = saved
    return out.getvalue()


def test_demo_loads_once(settings: object) -> None:
    output = run("demo", "--count", "300")
    assert "samordnare@farsta.demo" in output
    forum = Forum.objects.get(slug="farsta")
    assert Deviation.objects.filter(forum=forum).count() == 300
    assert Membership.objects.filter(forum=forum).count() == 12
    assert forum.organisations.count() == 12
    assert Meeting.objects.filter(forum=forum).count() >= 17
    assert Deviation.objects.exclude(visibility="forum").exists()  # the police restrict some
    assert "already" in run("demo", "--if-empty")
    assert Deviation.objects.count() == 300
    # Every demo deviation lies inside the forum's area and not in the future.
    from django.utils import timezone

    from lagesbild.geometry import area_contains

    assert all(area_contains(forum.area, d.lon, d.lat) for d in Deviation.objects.all())
    assert not Deviation.objects.filter(observed_at__gt=timezone.now()).exists()


def test_createforum_and_createuser(tmp_path: Path) -> None:
    area = tmp_path / "area.geojson"
    area.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [[[18.0, 59.2], [18.1, 59.2], [18.1, 59.3], [18.0, 59.2]]]}}))
    run("createforum", "bagis", "Bagarmossen trygghetsforum", "--area", str(area))
    forum = Forum.objects.get(slug="bagis")
    assert forum.area["type"] == "Polygon"
    with pytest.raises(CommandError, match="finns redan"):
        run("createforum", "bagis", "Again")
    bow_tie = tmp_path / "bad.geojson"
    bow_tie.write_text(json.dumps({"type": "Polygon", "coordinates": [
        [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}))
    with pytest.raises(CommandError, match="korsar sig själv"):
        run("createforum", "bad", "Bad", "--area", str(bow_tie))

    run("createuser", "anna@example.se", "--forum", "bagis", "--organisation", "Polisen", "--kind", "police",
        "--role", "org_lead", "--password-stdin", stdin="a long enough passphrase\n")
    membership = Membership.objects.get(user__email="anna@example.se")
    assert (membership.role, membership.organisation.kind) == ("org_lead", "police")
    assert Client().login(username="anna@example.se", password="a long enough passphrase")
    with pytest.raises(CommandError):
        run("createuser", "bo@example.se", "--forum", "bagis", "--organisation", "X", "--password-stdin",
            stdin="123\n")
    with pytest.raises(CommandError, match="No forum"):
        run("createuser", "bo@example.se", "--forum", "nope", "--organisation", "X", "--password-stdin",
            stdin="a long enough passphrase\n")


def test_token_create_list_revoke() -> None:
    run("demo", "--count", "10")
    key = run("token", "create", "polis@farsta.demo", "--name", "integration").strip()
    with pytest.raises(CommandError, match="not a member"):
        run("token", "create", "polis@farsta.demo", "--forum", "elsewhere")
    assert key.startswith("lgb_")
    response = Client().get("/api/forums/farsta/deviations", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert "integration" in run("token", "list", "polis@farsta.demo")
    token = ApiToken.objects.get()
    assert token.key_hash != key  # only a hash is stored
    run("token", "revoke", str(token.pk))
    assert Client().get("/api/forums/farsta/deviations", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401
    with pytest.raises(CommandError):
        run("token", "create", "nobody@example.se")


def test_requeue_puts_back_only_what_a_dead_or_long_silent_worker_held(db: None) -> None:
    import datetime as dt
    import os
    import subprocess

    from django.utils import timezone
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from lagesbild import task_queue
    from tests.tasks_for_tests import slow_the_first_time

    ended = subprocess.Popen(["true"])
    ended.wait()  # a process id no longer running
    host = task_queue.worker_id().split(":")[0]
    now = timezone.now()
    held = {
        "dead here": (f"{host}:{ended.pid}:abc", now, TaskResultStatus.RUNNING),
        "alive here": (f"{host}:{os.getpid()}:abc", now - dt.timedelta(minutes=5), TaskResultStatus.RUNNING),
        "elsewhere, lately": ("another-machine:1:abc", now - dt.timedelta(minutes=5), TaskResultStatus.RUNNING),
        "elsewhere, long ago": ("another-machine:1:abc", now - dt.timedelta(hours=2), TaskResultStatus.RUNNING),
        "done": (f"{host}:{ended.pid}:abc", now, TaskResultStatus.SUCCESSFUL),
    }
    ids = {}
    for name, (worker, started, status) in held.items():
        result = slow_the_first_time.enqueue(name)
        DBTaskResult.objects.filter(pk=result.id).update(status=status, started_at=started, worker_ids=[worker])
        ids[name] = result.id
    assert task_queue.requeue_abandoned() == 2
    status = {name: DBTaskResult.objects.get(pk=pk).status for name, pk in ids.items()}
    assert status == {"dead here": TaskResultStatus.READY, "alive here": TaskResultStatus.RUNNING,
                      "elsewhere, lately": TaskResultStatus.RUNNING, "elsewhere, long ago": TaskResultStatus.READY,
                      "done": TaskResultStatus.SUCCESSFUL}
    assert task_queue.requeue_abandoned() == 0

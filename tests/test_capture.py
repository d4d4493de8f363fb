"""Captures from the field sent more than once (a lost answer, the phone's offline queue) make one deviation:
the Idempotency-Key header names the capture."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from lagesbild.deviations import services
from lagesbild.deviations.models import Deviation, Photo
from tests.conftest import World, image_bytes
from tests.test_api import BASE, error_of, new_deviation, post_json

pytestmark = pytest.mark.django_db
KEY = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"


def send(client: Client, key: str = KEY, **fields: Any) -> Any:
    return post_json(client, f"{BASE}/deviations", new_deviation(**fields), HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_capture_sent_again_is_the_same_deviation(world: World) -> None:
    police = world.client(world.police_reporter)
    first = send(police)
    assert first.status_code == 201, first.content
    again = send(police)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json() == first.json()
    assert Deviation.objects.filter(description="Klotter på muren").count() == 1
    # Another key is another capture; the same key from someone else is theirs.
    assert send(police, key="another-capture-key").status_code == 201
    assert send(world.client(world.housing_reporter)).status_code == 201
    assert Deviation.objects.filter(description="Klotter på muren").count() == 3
    # Without a key every request is a new report, as before.
    assert post_json(police, f"{BASE}/deviations", new_deviation()).status_code == 201
    assert Deviation.objects.filter(description="Klotter på muren").count() == 4


def test_a_capture_with_photos_sent_twice_keeps_one_set_of_photos(world: World) -> None:
    police = world.client(world.police_reporter)
    form = {"category": "graffiti", "lon": "18.09", "lat": "59.244", "description": "Med foto"}
    responses = [police.post(f"{BASE}/deviations", {**form, "photos": [_photo(), _photo()]},
                             HTTP_IDEMPOTENCY_KEY=KEY) for _ in range(2)]
    assert [r.status_code for r in responses] == [201, 200]
    [deviation] = Deviation.objects.filter(description="Med foto")
    assert Photo.objects.filter(deviation=deviation).count() == 2


def _photo() -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("foto.jpg", image_bytes(), content_type="image/jpeg")


@pytest.mark.parametrize("key", ["short", "x" * 65, "has space in it", "åäö-åäö-åäö", "semi;colon1", ""])
def test_a_key_that_is_not_one_is_refused(world: World, key: str) -> None:
    response = send(world.client(world.police_reporter), key=key)
    assert response.status_code == 422
    assert error_of(response)["field"] == "Idempotency-Key"
    assert "8 till 64" in error_of(response)["message"]
    assert not Deviation.objects.filter(description="Klotter på muren").exists()


def test_a_withdrawn_capture_is_not_made_again(world: World) -> None:
    police = world.client(world.police_reporter)
    deviation_id = send(police).json()["id"]
    services.withdraw_deviation(world.police_reporter, deviation_id)
    response = send(police)
    assert response.status_code == 409
    assert "dragits tillbaka" in error_of(response)["message"]
    assert Deviation.objects.filter(description="Klotter på muren").count() == 1


def test_a_refused_capture_leaves_its_key_free(world: World) -> None:
    police = world.client(world.police_reporter)
    assert send(police, category="unicorns").status_code == 422
    assert send(police).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_the_same_capture_sent_twice_at_once_makes_one_deviation(world: World) -> None:
    """Two requests with the same key racing: one makes the deviation, the other finds it."""
    answers: list[int] = []
    start = threading.Barrier(2)

    def post() -> None:
        try:
            start.wait(10)
            answers.append(send(world.client(world.police_reporter)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # SQLite has one writer: the second may also wait its turn and then find the first (200), or be told to
    # try again (503) when the first holds on longer than the wait; never a second deviation, never a 500.
    assert sorted(answers) in ([200, 201], [201, 503]), answers
    assert Deviation.objects.filter(description="Klotter på muren").count() == 1

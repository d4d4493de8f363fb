"""The members of a city's safety forums at work, for locust: panning and filtering the map, opening deviations,
reporting, and one meeting on the shared screen. bench/load_test.py writes the settings this reads (the
forum, API tokens, a meeting and a signed-in session) and runs it; see that file.

locust runs on the same two cores as the app and PostgreSQL, so it must cost as little as it can: every
millisecond it spends is one the app does not get, and a busy locust counts its own delay in the response
times. So the members use locust's FastHttpUser (geventhttpclient, a fraction of requests' cost), read only
what they need from an answer, and keep of each answer only its ETag and those few facts, not the answer.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser

SETTINGS: dict[str, Any] = json.loads(Path(os.environ["LAGESBILD_LOAD_SETTINGS"]).read_text())
CITY = SETTINGS["city"]  # west, south, east, north
API = f"/api/forums/{SETTINGS['forum']}"


def district_box(rng: random.Random) -> str:
    """A phone's or desktop's view of part of the city: 2 to 6 km across."""
    width = rng.uniform(0.035, 0.1)
    height = width / 2
    west = rng.uniform(CITY[0], CITY[2] - width)
    south = rng.uniform(CITY[1], CITY[3] - height)
    return f"{west:.5f},{south:.5f},{west + width:.5f},{south + height:.5f}"


def last_month() -> str:
    """The map's period: about the month since the last meeting."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).strftime("%Y-%m-%dT00:00:00Z")


def number_matched(body: dict[str, Any]) -> int:
    return int(body["numberMatched"])


def first_ids(body: dict[str, Any]) -> list[int]:
    """The deviations a member may open next: the first 50 on the list."""
    return [feature["id"] for feature in body["features"][:50]]


class Member(FastHttpUser):
    """A member with the map open: pans, filters, opens what they see, now and then reports."""

    wait_time = between(1, 5)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.auth = {"Authorization": f"Bearer {self.rng.choice(SETTINGS['tokens'])}", "Accept-Encoding": "gzip"}
        self.seen: list[int] = []
        # What the map holds for each URL it has asked: the ETag, and of the answer only what this script reads
        # again after a 304 (the number matched, or the ids on a list).
        self.tags: dict[str, str] = {}
        self.kept: dict[str, Any] = {}

    def _get(self, path: str, name: str, read: Callable[[dict[str, Any]], Any]) -> Any:
        """As the map asks: with the ETag it holds; on a 304, what it kept of the answer before (as the browser's
        cache gives the map its copy). `read` picks from a fresh answer what the member goes on with."""
        headers = {**self.auth, **({"If-None-Match": self.tags[path]} if path in self.tags else {})}
        with self.client.get(path, name=name, headers=headers, catch_response=True) as answer:
            if answer.status_code == 304:
                answer.success()
                return self.kept.get(path)
            if answer.status_code != 200:
                # No answer at all (status 0: a timeout, a connection reset) is reported by its error.
                body = (answer.content or b"")[:200]
                answer.failure(getattr(answer, "error", None) or f"{answer.status_code}: {body!r}")
                return None
            try:
                kept = read(json.loads(answer.content))
            except (ValueError, KeyError, TypeError) as error:  # a 200 that is not the answer the map expects
                answer.failure(f"unreadable answer: {error!r}")
                return None
            if answer.headers and "ETag" in answer.headers:
                self.tags[path] = answer.headers["ETag"]
                self.kept[path] = kept
            return kept

    def _view(self, query: str) -> None:
        """The map's two requests (map.js): the count, then every point, or a page of the newest without counting
        them again."""
        matched = self._get(f"{API}/deviations/aggregates?{query}", "aggregates", number_matched)
        if matched is None or matched <= 3000:
            listed = self._get(f"{API}/deviations?{query}&limit=3000", "list (all points)", first_ids)
        else:
            listed = self._get(f"{API}/deviations?{query}&limit=100&count=false", "list (a page of 100)", first_ids)
        if listed is not None:  # an empty view leaves nothing to open
            self.seen = listed

    @task(10)
    def pan(self) -> None:
        self._view(f"bbox={district_box(self.rng)}&from={last_month()}")

    @task(3)
    def filter_by_category(self) -> None:
        category = self.rng.choice(["graffiti", "damage", "littering", "broken_lighting", "youth_groups"])
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=self.rng.choice([90, 365]))).strftime(
            "%Y-%m-%dT00:00:00Z")
        self._view(f"bbox={','.join(map(str, CITY))}&from={since}&category={category}")

    @task(4)
    def open_one(self) -> None:
        if self.seen:
            self.client.get(f"{API}/deviations/{self.rng.choice(self.seen)}", name="one deviation", headers=self.auth)

    @task(2)
    def hexagon_tiles(self) -> None:
        """The hexagon layer at zoom 12: three tiles, with the map's filter (the last month), as map.js asks."""
        z = 12
        lon, lat = self.rng.uniform(CITY[0], CITY[2]), self.rng.uniform(CITY[1], CITY[3])
        x = int((lon + 180) / 360 * 2**z)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
        for dx in range(3):
            path = f"{API}/tiles/WebMercatorQuad/{z}/{x + dx}/{y}?from={last_month()}&hexagons=true"
            headers = {**self.auth, **({"If-None-Match": self.tags[path]} if path in self.tags else {})}
            answer = self.client.get(path, name="hexagon tile", headers=headers)
            if answer.status_code == 200 and answer.headers and "ETag" in answer.headers:
                self.tags[path] = answer.headers["ETag"]

    @task(1)
    def report(self) -> None:
        lon = self.rng.uniform(CITY[0] + 0.01, CITY[2] - 0.01)
        lat = self.rng.uniform(CITY[1] + 0.01, CITY[3] - 0.01)
        self.client.post(f"{API}/deviations", name="report", json={
            "category": self.rng.choice(["graffiti", "littering", "broken_lighting"]), "lon": round(lon, 6),
            "lat": round(lat, 6), "description": "Belastningstest"}, headers=self.auth)


class MeetingScreen(FastHttpUser):
    """The monthly meeting's shared screen, reloaded as the coordinator moves through the agenda."""

    fixed_count = 1
    wait_time = between(10, 20)

    @task
    def screen(self) -> None:
        self.client.get(SETTINGS["meeting_screen"], name="meeting screen",
                        headers={"Cookie": f"{SETTINGS['session_cookie']}={SETTINGS['session']}"})

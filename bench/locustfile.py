"""The members of a city's safety forums at work, for locust: panning and filtering the map, opening deviations,
reporting, and one meeting on the shared screen. bench/load_test.py writes the settings this reads (the
forum, API tokens, a meeting and a signed-in session) and runs it; see that file.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
from pathlib import Path
from typing import Any

from locust import HttpUser, between, task

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


class Member(HttpUser):
    """A member with the map open: pans, filters, opens what they see, now and then reports."""

    wait_time = between(1, 5)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.client.headers["Authorization"] = f"Bearer {self.rng.choice(SETTINGS['tokens'])}"
        self.client.headers["Accept-Encoding"] = "gzip"
        self.seen: list[int] = []
        self.tags: dict[str, str] = {}
        self.bodies: dict[str, dict[str, Any]] = {}

    def _get(self, path: str, name: str) -> dict[str, Any] | None:
        """As the map asks: with the ETag it holds, and the copy it holds when the answer is 304 (as the
        browser's cache gives the map its copy)."""
        headers = {"If-None-Match": self.tags[path]} if path in self.tags else {}
        with self.client.get(path, name=name, headers=headers, catch_response=True) as answer:
            if answer.status_code == 304:
                answer.success()
                return self.bodies.get(path)
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                return None
            body: dict[str, Any] = answer.json()
            if "ETag" in answer.headers:
                self.tags[path] = answer.headers["ETag"]
                self.bodies[path] = body
            return body

    def _view(self, query: str) -> None:
        """The map's two requests (map.js): the count, then every point, or a page of the newest without counting
        them again."""
        counted = self._get(f"{API}/deviations/aggregates?{query}", "aggregates")
        if counted is None or counted["numberMatched"] <= 3000:
            listed = self._get(f"{API}/deviations?{query}&limit=3000", "list (all points)")
        else:
            listed = self._get(f"{API}/deviations?{query}&limit=100&count=false", "list (a page of 100)")
        if listed:
            self.seen = [f["id"] for f in listed["features"][:50]]

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
            self.client.get(f"{API}/deviations/{self.rng.choice(self.seen)}", name="one deviation")

    @task(2)
    def hexagon_tiles(self) -> None:
        """The hexagon layer at zoom 12: three tiles, with the map's filter (the last month), as map.js asks."""
        z = 12
        lon, lat = self.rng.uniform(CITY[0], CITY[2]), self.rng.uniform(CITY[1], CITY[3])
        x = int((lon + 180) / 360 * 2**z)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
        for dx in range(3):
            path = f"{API}/tiles/WebMercatorQuad/{z}/{x + dx}/{y}?from={last_month()}&hexagons=true"
            headers = {"If-None-Match": self.tags[path]} if path in self.tags else {}
            answer = self.client.get(path, name="hexagon tile", headers=headers)
            if answer.status_code == 200 and "ETag" in answer.headers:
                self.tags[path] = answer.headers["ETag"]

    @task(1)
    def report(self) -> None:
        lon = self.rng.uniform(CITY[0] + 0.01, CITY[2] - 0.01)
        lat = self.rng.uniform(CITY[1] + 0.01, CITY[3] - 0.01)
        self.client.post(f"{API}/deviations", name="report", json={
            "category": self.rng.choice(["graffiti", "littering", "broken_lighting"]), "lon": round(lon, 6),
            "lat": round(lat, 6), "description": "Belastningstest"})


class MeetingScreen(HttpUser):
    """The monthly meeting's shared screen, reloaded as the coordinator moves through the agenda."""

    fixed_count = 1
    wait_time = between(10, 20)

    def on_start(self) -> None:
        self.client.cookies.set(SETTINGS["session_cookie"], SETTINGS["session"])

    @task
    def screen(self) -> None:
        self.client.get(SETTINGS["meeting_screen"], name="meeting screen")

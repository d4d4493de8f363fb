"""schemathesis against /api/openapi.json: every operation gets requests generated from its schema, valid ones
and deliberately invalid ones, as a coordinator, as an organisation lead and without credentials.

Whatever is sent, the API answers with no server error, with a status code the document lists for the
operation, with the content type it names, and with a body valid against the documented schema (errors
included). LAGESBILD_FUZZ_EXAMPLES sets how many requests each operation gets per kind (default 9: three or four
kinds, so about 1,700 requests on each backend); `make fuzz` (60 each) runs over eleven thousand on each.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.serializers.json import DjangoJSONEncoder
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lagesbild.api import api
from lagesbild.forums.models import ApiToken
from tests.conftest import World

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("LAGESBILD_FUZZ_EXAMPLES", 9))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _document() -> dict[str, Any]:
    """The document /api/openapi.json serves (test_pages checks that it is this one)."""
    return json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api/"), cls=DjangoJSONEncoder))


OPERATIONS = [(path, method.upper()) for path, item in _document()["paths"].items() for method in item]


@pytest.fixture
def wsgi_app() -> Iterator[Any]:
    """Django's WSGI application, as a server runs it, inside the test's transaction: like Django's own test
    client, it must not close the database connection at the end of each request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _examples(world: World, objects: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """A valid body for each writing operation, so that success answers are checked against their schemas too."""
    due = objects["due"]
    place = {"name": "Parkeringen", "lon": 18.1, "lat": 59.25, "radius_m": 50}
    return {
        ("/api/forums/{forum}/deviations", "POST"): {"category": "graffiti", "lon": 18.09, "lat": 59.244,
                                                      "description": "Klotter på muren"},
        ("/api/forums/{forum}/deviations/{deviation_id}", "PATCH"): {
            "version": objects["versions"][objects["public"]], "description": "Klotter på muren"},
        ("/api/forums/{forum}/personal-data-check", "POST"): {"fields": {"description": "Ring 070-123 45 67"}},
        ("/api/forums/{forum}/deviations/{deviation_id}/comments", "POST"): {"body": "Sanerat"},
        ("/api/forums/{forum}/places", "POST"): place,
        ("/api/forums/{forum}/places/{place_id}", "PATCH"): {**place, "name": "Torget"},
        ("/api/forums/{forum}/meetings", "POST"): {},
        ("/api/forums/{forum}/meetings/{meeting_id}", "PATCH"): {"title": "Forummöte"},
        ("/api/forums/{forum}/meetings/{meeting_id}/attendance", "PUT"): {
            "organisations": [world.district.pk], "people": [world.coordinator.user_id]},
        ("/api/forums/{forum}/meetings/{meeting_id}/items", "POST"): {"title": "Övrigt"},
        ("/api/forums/{forum}/meetings/{meeting_id}/items/order", "PUT"): {"items": objects["items"]},
        ("/api/forums/{forum}/meetings/{meeting_id}/items/{item_id}", "PATCH"): {"notes": "Anteckning"},
        ("/api/forums/{forum}/meetings/{meeting_id}/protocols", "POST"): {},
        ("/api/forums/{forum}/flags", "POST"): {"text": "Ta upp belysningen"},
        ("/api/forums/{forum}/actions", "POST"): {"title": "Fler patrullor", "organisation": world.police.pk,
                                                  "due_date": due},
        ("/api/forums/{forum}/actions/{action_id}", "PATCH"): {"title": "Kameror i trapphuset"},
        ("/api/forums/{forum}/actions/{action_id}/follow-ups", "POST"): {"body": "Pågår"},
        ("/api/forums/{forum}/walks/{walk_id}/track", "POST"): {"points": [[18.09, 59.244,
                                                                           timezone.now().timestamp()]]},
    }


def _walk_under_way(world: World) -> int:
    """A walk the police arrange, started, with a stop: the walk endpoints' real object."""
    from lagesbild.walks import services as walks

    walk = walks.plan_walk(world.police_lead, walks.WalkInput(title="Kvällsvandring", planned_at=timezone.now()))
    walks.add_stop(world.police_lead, walk.pk, "Torget", 18.09, 59.244)
    walks.start_walk(world.police_lead, walk.pk)
    return walk.pk


def _real_ids(objects: dict[str, Any]) -> dict[str, Any]:
    """Path parameters that name things that exist, so generated bodies and queries reach the real work."""
    return {"forum": "farsta", "deviation_id": objects["public"], "photo_id": objects["restricted_photo"],
            "place_id": objects["place"], "meeting_id": objects["meeting"], "item_id": objects["items"][0],
            "action_id": objects["action"], "version": 1, "collection": "deviations", "feature": str(objects["public"])}


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_generated_requests_get_documented_answers(world: World, objects: dict[str, Any], wsgi_app: Any,
                                                   path: str, method: str) -> None:
    schema = schemathesis.openapi.from_dict(_document())
    operation = schema[path][method]
    parameters = {name: value for name, value in _real_ids(objects).items() if "{" + name + "}" in path}
    if "{walk_id}" in path:
        parameters["walk_id"] = _walk_under_way(world)
    if path.startswith("/api/forums/{forum}/meetings/{meeting_id}") and "protocols" in path and method == "GET":
        parameters["meeting_id"] = objects["published"]
    # Requests are sent as the coordinator, the police's lead (who may see the restricted deviation), the
    # coordinator again, and without credentials, in turn.
    keys = [ApiToken.issue(world.coordinator, "fuzz")[1], ApiToken.issue(world.police_lead, "fuzz")[1]]
    turns = [keys[0], keys[1], keys[0], None]
    kinds = [operation.as_strategy(GenerationMode.POSITIVE, path_parameters=parameters),
             operation.as_strategy(GenerationMode.POSITIVE),
             operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=parameters)]
    example = _examples(world, objects).get((path, method))
    if example is not None:
        kinds.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=parameters, body=example,
                                           media_type="application/json"))
    seen: list[int] = []

    @settings(max_examples=len(kinds) * EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(kinds))
    def run(case: Any) -> None:
        key = turns[len(seen) % len(turns)]
        # Uncompressed: schemathesis's WSGI client does not undo gzip (tests/test_revalidation.py covers it).
        headers = {"Accept-Encoding": "identity", **({"Authorization": f"Bearer {key}"} if key else {})}
        response = case.call(app=wsgi_app, headers=headers)
        seen.append(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()
    assert seen, "no request was sent"
    assert all(status < 500 for status in seen)
    if example is not None or method == "GET":
        assert any(status < 300 for status in seen), f"no request succeeded: {sorted(set(seen))}"

"""The forum's own fields per category: defined by coordinators on the categories page, asked for on reports
of their category (and its subcategories), checked with clear errors, shown in the detail, filtered on, and
exported; a field removed is no longer asked for or shown."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from lagesbild.deviations import fields
from lagesbild.deviations.models import CategoryField, Deviation
from lagesbild.errors import InvalidInput
from tests.conftest import INSIDE, World

pytestmark = pytest.mark.django_db

F = "/api/forums/farsta"
PAGE = "/f/farsta/kategorier/"


def _add(client: Any, **form: Any) -> Any:
    return client.post(PAGE, {"op": "field-add", **form})


@pytest.fixture
def defined(world: World) -> dict[str, CategoryField]:
    """Four fields, added as a coordinator adds them on the categories page."""
    client = world.client(world.coordinator)
    for form in ({"category": "gathering", "label": "Antal personer", "kind": "number", "required": "on"},
                 {"category": "gathering", "label": "Polisen tillkallad", "kind": "yes_no"},
                 {"category": "damage", "label": "Färg", "kind": "choice", "choices": "Röd\nSvart\n\nSvart\nBlå"},
                 {"category": "graffiti", "label": "Tagg", "kind": "text"}):
        response = _add(client, **form)
        assert response.status_code == 302, response.content.decode()[:500]
    return {f.key: f for f in CategoryField.objects.all()}


def _report(client: Any, category: str, values: dict[str, Any] | None, as_form: bool = False) -> Any:
    body: dict[str, Any] = {"category": category, "lon": INSIDE[0], "lat": INSIDE[1]}
    if values is not None:
        body["fields"] = json.dumps(values) if as_form else values
    if as_form:
        return client.post(f"{F}/deviations", body)
    return client.post(f"{F}/deviations", json.dumps(body), content_type="application/json")


def test_fields_are_defined_with_keys_of_their_own_and_listed_with_their_categories(world: World,
                                                                                     defined: dict[str, Any]) -> None:
    assert sorted(defined) == ["antal_personer", "farg", "polisen_tillkallad", "tagg"]
    assert defined["farg"].choices == ["Röd", "Svart", "Blå"]
    listed = {c["key"]: c["fields"] for c in world.client(world.viewer).get(f"{F}/categories").json()}
    assert [f["key"] for f in listed["gathering"]] == ["antal_personer", "polisen_tillkallad"]
    # A subcategory is asked its main category's fields, then its own.
    assert [f["key"] for f in listed["graffiti"]] == ["farg", "tagg"]
    assert listed["litter"] == []
    page = world.client(world.coordinator).get(PAGE).content.decode()
    assert "Antal personer" in page and "<code>polisen_tillkallad</code>" in page


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"category": "", "label": "Antal", "kind": "number"}, "category", "Välj en kategori."),
    ({"category": "gathering", "label": "  ", "kind": "number"}, "label", "Ge fältet ett namn."),
    ({"category": "gathering", "label": "Antal", "kind": "date"}, "kind", "Välj fältets typ."),
    ({"category": "damage", "label": "Färg", "kind": "choice", "choices": "Röd"}, "choices",
     "Ett valfält har 2 till 30 val, vart och ett högst 60 tecken."),
    ({"category": "gathering", "label": "x" * 81, "kind": "text"}, "label", "Ett fälts namn får vara högst 80 tecken."),
])
def test_a_field_that_cannot_be_is_refused_on_the_page_and_nothing_is_added(world: World, form: dict[str, str],
                                                                              field: str, message: str) -> None:
    response = _add(world.client(world.coordinator), **form)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not CategoryField.objects.exists()


def test_only_coordinators_define_fields(world: World) -> None:
    response = _add(world.client(world.police_lead), category="gathering", label="Antal", kind="number")
    assert response.status_code == 403
    assert not CategoryField.objects.exists()


def test_reports_carry_their_fields_checked_and_in_the_detail(world: World, defined: dict[str, Any]) -> None:
    client = world.client(world.housing_reporter)
    made = _report(client, "gathering", {"antal_personer": "2,5", "polisen_tillkallad": "ja"}, as_form=True)
    assert made.status_code == 201, made.content
    stored = Deviation.objects.get(pk=made.json()["id"])
    assert stored.fields == {"antal_personer": 2.5, "polisen_tillkallad": True}
    assert made.json()["fields"] == [
        {"key": "antal_personer", "label": "Antal personer", "kind": "number", "value": 2.5},
        {"key": "polisen_tillkallad", "label": "Polisen tillkallad", "kind": "yes_no", "value": True}]
    plain = _report(client, "litter", None)
    assert plain.status_code == 201 and Deviation.objects.get(pk=plain.json()["id"]).fields is None
    tagged = _report(client, "graffiti", {"farg": "Svart", "tagg": "  ABC \n 12 "})
    assert Deviation.objects.get(pk=tagged.json()["id"]).fields == {"farg": "Svart", "tagg": "ABC 12"}

    # Changing the category keeps what the new one shares, and drops the rest.
    version = Deviation.objects.get(pk=tagged.json()["id"]).version
    moved = client.patch(f"{F}/deviations/{tagged.json()['id']}", json.dumps({"version": version,
                                                                              "category": "damage"}),
                         content_type="application/json")
    assert moved.status_code == 200, moved.content
    assert Deviation.objects.get(pk=tagged.json()["id"]).fields == {"farg": "Svart"}
    changed = client.patch(f"{F}/deviations/{made.json()['id']}", json.dumps({
        "version": stored.version, "fields": {"antal_personer": 40}}), content_type="application/json")
    assert changed.status_code == 200
    assert Deviation.objects.get(pk=made.json()["id"]).fields == {"antal_personer": 40}


@pytest.mark.parametrize(("category", "values", "field", "message"), [
    ("gathering", {}, "fields.antal_personer", "Fyll i Antal personer."),
    ("gathering", {"antal_personer": "många"}, "fields.antal_personer", "Antal personer är ett tal."),
    ("gathering", {"antal_personer": "1e12"}, "fields.antal_personer",
     "Antal personer är ett tal mellan -1 000 000 000 och 1 000 000 000."),
    ("gathering", {"antal_personer": True}, "fields.antal_personer", "Antal personer är ett tal."),
    ("gathering", {"antal_personer": 3, "polisen_tillkallad": "kanske"}, "fields.polisen_tillkallad",
     "Polisen tillkallad är ja eller nej."),
    ("gathering", {"antal_personer": 3, "tagg": "x"}, "fields.tagg",
     "Samlingar/ordningsstörning har inget fält “tagg”."),
    ("graffiti", {"farg": "Grön"}, "fields.farg", "Färg är ett av: Röd, Svart, Blå."),
    ("graffiti", {"tagg": "x" * 201}, "fields.tagg", "Tagg får vara högst 200 tecken."),
    ("graffiti", {"tagg": ["a"]}, "fields.tagg", "Tagg är text."),
])
def test_a_field_filled_in_wrong_is_refused_clearly_and_nothing_is_saved(
        world: World, defined: dict[str, Any], category: str, values: dict[str, Any], field: str, message: str) -> None:
    response = _report(world.client(world.housing_reporter), category, values)
    assert response.status_code == 422, response.content
    assert response.json()["error"] == {"code": "invalid", "message": message, "field": field}
    assert not Deviation.objects.exists()


def test_fields_sent_as_a_form_that_is_not_an_object_are_refused(world: World, defined: dict[str, Any]) -> None:
    client = world.client(world.housing_reporter)
    for text in ("{", "[1, 2]", '"text"'):
        response = client.post(f"{F}/deviations", {"category": "litter", "lon": INSIDE[0], "lat": INSIDE[1],
                                                   "fields": text})
        assert response.status_code == 422, text
        assert response.json()["error"]["field"] == "fields"
    assert not Deviation.objects.exists()


def test_filters_and_exports_use_the_fields_of_what_the_member_may_see(world: World, defined: dict[str, Any]) -> None:
    housing = world.client(world.housing_reporter)
    ids = {}
    for name, values in (("few", {"antal_personer": 3, "polisen_tillkallad": False}),
                         ("many", {"antal_personer": 40, "polisen_tillkallad": True})):
        ids[name] = _report(housing, "gathering", values).json()["id"]
    hidden = world.report(world.police_reporter, category="gathering", visibility="organisation",
                          fields={"antal_personer": 40, "polisen_tillkallad": True})

    def found(client: Any, *expressions: str) -> set[int]:
        response = client.get(f"{F}/deviations", {"field": list(expressions)})
        assert response.status_code == 200, response.content
        return {f["id"] for f in response.json()["features"]}

    assert found(housing, "polisen_tillkallad:ja") == {ids["many"]}
    assert found(housing, "polisen_tillkallad:nej") == {ids["few"]}
    assert found(housing, "antal_personer:40", "polisen_tillkallad:ja") == {ids["many"]}
    assert found(world.client(world.police_reporter), "antal_personer:40") == {ids["many"], hidden.pk}
    for bad in ("okänt:1", "antal_personer", "antal_personer:många"):
        response = housing.get(f"{F}/deviations", {"field": bad})
        assert response.status_code == 422, bad
        assert response.json()["error"]["field"] in ("field", "fields.antal_personer")

    exported = housing.get(f"{F}/export", {"format": "csv", "field": "antal_personer:40"})
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode("utf-8-sig")), delimiter=";"))
    header = rows[0]
    # The forum's own fields come after the export's own columns, before the line or area and the position.
    assert header[-7:-3] == ["Antal personer", "Polisen tillkallad", "Färg", "Tagg"]
    assert [(r[0], r[-7], r[-6]) for r in rows[1:]] == [(str(ids["many"]), "40", "Ja")]

    # Removed: no longer asked for, shown, filtered on or exported; what was filled in stays stored.
    coordinator = world.client(world.coordinator)
    assert coordinator.post(PAGE, {"op": "field-remove", "field": defined["polisen_tillkallad"].pk}).status_code == 302
    assert [f["key"] for f in housing.get(f"{F}/deviations/{ids['many']}").json()["fields"]] == ["antal_personer"]
    assert housing.get(f"{F}/deviations", {"field": "polisen_tillkallad:ja"}).status_code == 422
    assert Deviation.objects.get(pk=ids["many"]).fields == {"antal_personer": 40, "polisen_tillkallad": True}


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3), max_leaves=6)


@given(value=json_values)
@hyp_settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_value_is_taken_or_refused_clearly(defined: dict[str, CategoryField], value: Any) -> None:
    for definition in defined.values():
        try:
            result = fields.value_of(definition, value)
        except InvalidInput as exc:
            assert exc.field == f"fields.{definition.key}" and definition.label in exc.message
            continue
        assert result is None or isinstance(result, str | int | float | bool)
        if definition.kind == CategoryField.Kind.CHOICE and result is not None:
            assert result in definition.choices


def test_the_patterns_count_what_the_member_may_see(world: World, defined: dict[str, Any]) -> None:
    housing = world.client(world.housing_reporter)
    for values in ({"antal_personer": 3, "polisen_tillkallad": "nej"}, {"antal_personer": 40,
                                                                          "polisen_tillkallad": "ja"},
                   {"antal_personer": 5}):
        assert _report(housing, "gathering", values).status_code == 201
    assert _report(housing, "graffiti", {"farg": "Svart"}).status_code == 201
    world.report(world.police_reporter, category="gathering", visibility="organisation",
                 fields={"antal_personer": 1000, "polisen_tillkallad": True})
    counts = {f["key"]: f for f in housing.get(f"{F}/patterns/fields", {"period": "all"}).json()}
    assert counts["antal_personer"] | {"values": None} == {
        "key": "antal_personer", "label": "Antal personer", "kind": "number", "filled": 3, "total": 48.0,
        "mean": 16.0, "values": None}
    assert counts["polisen_tillkallad"]["values"] == [{"value": "Ja", "count": 1}, {"value": "Nej", "count": 1}]
    assert counts["farg"]["values"][0] == {"value": "Svart", "count": 1}
    assert counts["tagg"]["filled"] == 0
    police = {f["key"]: f for f in world.client(world.police_reporter).get(
        f"{F}/patterns/fields", {"period": "all"}).json()}
    assert police["antal_personer"]["total"] == 1048.0
    page = housing.get("/f/farsta/monster/", {"period": "all"}).content.decode()
    assert "Polisen tillkallad" in page and "48 totalt, 16,0 i genomsnitt" in page


def test_text_in_a_field_is_looked_at_for_personal_data_as_the_description_is(world: World,
                                                                               defined: dict[str, Any]) -> None:
    client = world.client(world.housing_reporter)
    warned = _report(client, "graffiti", {"tagg": "ring 070-123 45 67"})
    assert warned.status_code == 201
    assert [w["field"] for w in warned.json()["warnings"]] == ["fields.tagg"]
    world.forum.block_personal_data = True
    world.forum.save()
    refused = _report(client, "graffiti", {"tagg": "ring 070-123 45 67"})
    assert refused.status_code == 422
    assert (refused.json()["error"]["code"], refused.json()["error"]["field"]) == ("personal_data", "fields.tagg")
    assert Deviation.objects.count() == 1


def test_an_edit_of_something_else_leaves_the_fields_as_they_are(world: World, defined: dict[str, Any]) -> None:
    """A field added as required, or removed, after a deviation was reported does not stop its edits."""
    client = world.client(world.housing_reporter)
    made = _report(client, "graffiti", {"tagg": "ABC"}).json()
    coordinator = world.client(world.coordinator)
    assert _add(coordinator, category="graffiti", label="Yta", kind="text", required="on").status_code == 302
    assert coordinator.post(PAGE, {"op": "field-remove", "field": defined["tagg"].pk}).status_code == 302
    version = Deviation.objects.get(pk=made["id"]).version
    for member, change in ((world.housing_reporter, {"description": "Nytt"}), (world.coordinator,
                                                                                {"status": "reviewed"})):
        response = world.client(member).patch(
            f"{F}/deviations/{made['id']}", json.dumps({"version": version, **change}), content_type="application/json")
        assert response.status_code == 200, response.content
        version += 1
    assert Deviation.objects.get(pk=made["id"]).fields == {"tagg": "ABC"}
    # Changing the fields asks for the required one.
    response = client.patch(f"{F}/deviations/{made['id']}", json.dumps({"version": version, "fields": {}}),
                            content_type="application/json")
    assert response.status_code == 422 and response.json()["error"]["field"] == "fields.yta"


@pytest.mark.parametrize("label", ["In", "Has key", "112", "2024", "Isnull", "Regex", "Contains",
                                   "Antal personer som var på pla x", "Åäö!"])
def test_any_label_makes_a_key_that_filters_and_counts(world: World, label: str) -> None:
    coordinator = world.client(world.coordinator)
    for category in ("gathering", "damage"):  # the same label twice: a second key
        assert _add(coordinator, category=category, label=label, kind="number").status_code == 302
    keys = list(CategoryField.objects.values_list("key", flat=True))
    assert all(fields.KEY.fullmatch(key) for key in keys), keys
    made = _report(world.client(world.housing_reporter), "gathering", {keys[0]: 7})
    assert made.status_code == 201, made.content
    client = world.client(world.housing_reporter)
    assert client.get(f"{F}/deviations", {"field": f"{keys[0]}:7"}).json()["numberMatched"] == 1
    assert client.get(f"{F}/deviations", {"field": f"{keys[0]}:8"}).json()["numberMatched"] == 0
    assert client.get(f"{F}/deviations", {"field": f"{keys[0]}:"}).json()["numberMatched"] == 1
    [counted] = [f for f in client.get(f"{F}/patterns/fields", {"period": "all"}).json() if f["key"] == keys[0]]
    assert (counted["filled"], counted["total"]) == (1, 7.0)


def test_a_removed_fields_key_is_never_given_again(world: World, defined: dict[str, Any]) -> None:
    client = world.client(world.housing_reporter)
    assert _report(client, "graffiti", {"tagg": "Anna S"}).status_code == 201
    coordinator = world.client(world.coordinator)
    assert coordinator.post(PAGE, {"op": "field-remove", "field": defined["tagg"].pk}).status_code == 302
    assert _add(coordinator, category="graffiti", label="Tagg", kind="number").status_code == 302
    assert list(fields.forum_fields(world.forum).values_list("key", flat=True).order_by("pk"))[-1] == "tagg_2"
    exported = client.get(f"{F}/export", {"format": "csv"})
    text = b"".join(exported.streaming_content).decode("utf-8-sig")
    assert "Anna S" not in text
    assert client.get(f"{F}/deviations", {"field": "tagg_2:"}).json()["numberMatched"] == 0


def test_field_filters_and_values_that_cannot_be_are_refused(world: World, defined: dict[str, Any]) -> None:
    client = world.client(world.housing_reporter)
    too_many = client.get(f"{F}/deviations", {"field": ["antal_personer:3"] * 11})
    assert (too_many.status_code, too_many.json()["error"]["field"]) == (422, "field")
    nul = client.post(f"{F}/deviations", {"category": "graffiti", "lon": INSIDE[0], "lat": INSIDE[1],
                                          "fields": json.dumps({"tagg": "a\u0000b"})})
    assert (nul.status_code, nul.json()["error"]["code"]) == (400, "bad_request")
    long_key = client.post(f"{F}/deviations", json.dumps({"category": "graffiti", "lon": INSIDE[0],
                                                          "lat": INSIDE[1], "fields": {"x" * 300: 1}}),
                           content_type="application/json")
    assert long_key.status_code == 422 and len(long_key.json()["error"]["message"]) < 120
    assert not Deviation.objects.exists()


def test_a_label_in_the_csv_header_is_never_a_formula(world: World) -> None:
    coordinator = world.client(world.coordinator)
    assert _add(coordinator, category="graffiti", label='=HYPERLINK("http://evil.example")', kind="text"
                ).status_code == 302
    exported = world.client(world.viewer).get(f"{F}/export", {"format": "csv"})
    header = b"".join(exported.streaming_content).decode("utf-8-sig").splitlines()[0]
    assert header.split(";")[-4].lstrip('"').startswith("'=")

"""The personal-data guard: what it finds and what it leaves alone."""

from __future__ import annotations

import pytest

from lagesbild.personal_data import find_personal_data, luhn_valid, warnings_for


def kinds(text: str) -> list[str]:
    return [f.kind for f in find_personal_data(text)]


@pytest.mark.parametrize("number", ["811218-9876", "8112189876", "19811218-9876", "198112189876", "811218+9876"])
def test_personal_identity_numbers_with_a_valid_check_digit(number: str) -> None:
    assert kinds(f"Pojken med nummer {number} syntes vid torget") == ["personal_identity_number"]


def test_coordination_numbers_count_too() -> None:
    assert luhn_valid("7010632391")
    assert kinds("samordningsnummer 701063-2391") == ["personal_identity_number"]


@pytest.mark.parametrize("text", [
    "811218-9875",  # wrong check digit
    "811318-9876",  # no 13th month (and the check digit would not save it)
    "Ärende 2026-0412 och 2026-0413",  # case numbers
    "Klockan 21.30 den 12/3",
    "Belysningsstolpe 12345",
])
def test_things_that_are_not_personal_identity_numbers(text: str) -> None:
    assert "personal_identity_number" not in kinds(text)


@pytest.mark.parametrize("text", ["ring 070-123 45 67", "tel 0701234567", "+46 70 123 45 67", "08-123 456 78"])
def test_phone_numbers(text: str) -> None:
    assert kinds(text) == ["phone_number"]


def test_email_addresses() -> None:
    assert kinds("skriv till anna.svensson@example.se om det") == ["email_address"]


@pytest.mark.parametrize("text", ["bilen ABC 123 stod kvar", "en vit ABC12D", "MLB 44F parkerad"])
def test_vehicle_registrations(text: str) -> None:
    assert kinds(text) == ["vehicle_registration"]


@pytest.mark.parametrize("text", [
    "Klotter på elskåpet vid Farsta centrum, ca 3 m långt.",
    "Trasig lampa, stolpe nr 4711. Mörkt sedan vecka 12.",
    "Buss 173 mot Skarpnäck",  # a bus line is not a registration number
    "VIQ 123",  # I, Q and V are never used
])
def test_ordinary_descriptions_pass(text: str) -> None:
    assert kinds(text) == []


def test_warnings_name_the_field_and_explain() -> None:
    [warning] = warnings_for({"description": "Ring 070-123 45 67", "place_name": "Torget"})
    assert warning["field"] == "description"
    assert warning["code"] == "phone_number"
    assert "070-123 45 67" in warning["message"]
    assert "inte personer" in warning["message"]

"""The personal-data guard: find what looks like personal data in free text.

The shared picture describes places and situations, not people (DESIGN.md §7). Most member organisations
may not process data on offences by named persons (GDPR Art. 10), so the report form and the API warn when
a description or comment contains what looks like a Swedish personal identity number (with a valid check
digit), a phone number, an e-mail address or a Swedish vehicle registration number. A forum can make the
warning blocking.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

from django.utils.translation import gettext as _

# 19/20 optional century, YYMMDD, separator (-, + or none), four digits.
_PERSONAL_NUMBER = re.compile(r"(?<![\d])(?:19|20)?(\d{2})(\d{2})(\d{2})[-+ ]?(\d{4})(?![\d])")
# Swedish numbers (+46 or 0 first) with optional spaces or dashes between groups: 8 to 10 digits after 0.
_PHONE = re.compile(r"(?<![\w+])(?:\+46|0046|0)[\s-]?(?:\d[\s-]?){7,9}\d(?![\d])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# ABC 123 or ABC 12A; I, Q and V are not used, nor Å, Ä, Ö.
_REGISTRATION = re.compile(r"(?<![\wÅÄÖåäö])([A-HJ-PR-UW-Z]{3}) ?(\d{2}[\dA-HJ-PR-UW-Z])(?![\wÅÄÖåäö])")


@dataclass(frozen=True)
class Finding:
    kind: str  # personal_identity_number, phone_number, email_address, vehicle_registration
    text: str
    start: int

    @property
    def label(self) -> str:
        return {
            "personal_identity_number": _("a personal identity number"),
            "phone_number": _("a phone number"),
            "email_address": _("an e-mail address"),
            "vehicle_registration": _("a vehicle registration number"),
        }[self.kind]


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(digits):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _is_personal_number(year: str, month: str, day: str, last: str) -> bool:
    if not luhn_valid(year + month + day + last):
        return False
    day_number = int(day)
    if day_number > 60:  # a coordination number (samordningsnummer) adds 60 to the day
        day_number -= 60
    try:
        # Any leap year will do: only whether the month and day exist matters.
        dt.date(2000, int(month), day_number)
    except ValueError:
        return False
    return True


# Every pattern holds a digit or an @: text without either is let through at once (most text, in an import).
_MAY_HOLD = re.compile(r"[\d@]")


def find_personal_data(text: str) -> list[Finding]:
    if not _MAY_HOLD.search(text):
        return []
    return list(_findings(text))


@lru_cache(maxsize=4096)  # an import meets the same place names again and again
def _findings(text: str) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    taken: list[range] = []

    def add(kind: str, match: re.Match[str]) -> None:
        if any(match.start() in span for span in taken):
            return
        taken.append(range(match.start(), match.end()))
        findings.append(Finding(kind, match.group(0), match.start()))

    for match in _PERSONAL_NUMBER.finditer(text):
        if _is_personal_number(*match.groups()):
            add("personal_identity_number", match)
    for match in _EMAIL.finditer(text):
        add("email_address", match)
    for match in _PHONE.finditer(text):
        add("phone_number", match)
    for match in _REGISTRATION.finditer(text):
        add("vehicle_registration", match)
    return tuple(sorted(findings, key=lambda f: f.start))


def warnings_for(fields: dict[str, str]) -> list[dict[str, str]]:
    """One warning per finding, naming the field, in the person's language."""
    warnings = []
    for field, text in fields.items():
        if not text:
            continue
        for finding in find_personal_data(text):
            warnings.append({
                "code": finding.kind,
                "field": field,
                "text": finding.text,
                "message": _("“%(text)s” looks like %(what)s. Describe places and situations, not people.")
                % {"text": finding.text, "what": finding.label},
            })
    return warnings

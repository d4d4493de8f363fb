"""Reading what people and programs send: whole numbers, decimals, dates, times and JSON.

Every form, query string and API body goes through these (or through the API's typed fields, which
use the same bounds), so input that Python itself would choke on gets a 4xx with a message a person
understands instead of a server error:

- digits that `str.isdigit()` accepts but `int()` does not (`²`, `٣`): only ASCII digits are numbers;
- whole numbers beyond what the database stores (64 bits);
- decimals that are not finite (`nan`, `inf`);
- dates and times so far from now that arithmetic on them overflows (year 1, year 9999);
- local times that do not exist (02:30 on the night the clocks go forward);
- JSON nested deeper than anyone writes, or with a lone surrogate in a string.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from lagesbild.errors import InvalidInput

# The largest id or count the database stores (a signed 64-bit integer).
MAX_INT = 2**63 - 1
# Any date or time we accept lies in these years. Far enough apart for every real use; near enough that
# moving a date by a few years never leaves Python's calendar.
FIRST_YEAR = 1900
LAST_YEAR = 2199

_DIGITS = re.compile(r"[+-]?[0-9]{1,19}")


def parse_int(value: str | int | None, field: str | None = None, *, minimum: int = 0,
              maximum: int = MAX_INT) -> int | None:
    """A whole number from a form or query string; empty means none."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not _DIGITS.fullmatch(text):
            raise InvalidInput(_("%(value)s is not a whole number.") % {"value": _shorten(text)}, field=field)
        number = int(text)
    if not minimum <= number <= maximum:
        raise InvalidInput(_("%(value)s is out of range (%(min)s to %(max)s).") % {
            "value": _shorten(str(number)), "min": minimum, "max": maximum}, field=field)
    return number


def parse_id(value: str | int | None, field: str | None = None) -> int | None:
    """An id of something stored: a positive whole number."""
    return parse_int(value, field, minimum=1)


def parse_ids(values: Iterable[str], field: str | None = None) -> list[int]:
    """Ids from a repeated form field; empty entries are skipped, anything else that is not an id refused."""
    return [number for value in values if (number := parse_id(value, field)) is not None]


def parse_float(value: str | None, field: str | None = None) -> float | None:
    """A decimal number from a form (a comma works as well as a point); empty means none."""
    if value is None or value == "":
        return None
    text = str(value).strip().replace(",", ".")
    try:
        number = float(text) if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text) else None
    except OverflowError:  # pragma: no cover - float() gives inf rather than raising
        number = None
    if number is None or not math.isfinite(number):
        raise InvalidInput(_("%(value)s is not a number.") % {"value": _shorten(text)}, field=field)
    return number


def check_date(value: dt.date, field: str | None = None) -> dt.date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InvalidInput(_("The date must be between the years %(first)d and %(last)d.") % {
            "first": FIRST_YEAR, "last": LAST_YEAR}, field=field)
    return value


def check_datetime(value: dt.datetime, field: str | None = None) -> dt.datetime:
    """Refuse times outside FIRST_YEAR..LAST_YEAR (an offset moves a time by at most a day, so comparing the
    year is safe whatever the offset)."""
    check_date(value.date(), field)
    return value


def parse_date(value: str | None, field: str | None = None) -> dt.date | None:
    if not value:
        return None
    try:
        parsed = dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise InvalidInput(_("Write the date as YYYY-MM-DD."), field=field) from exc
    return check_date(parsed, field)


def local_to_aware(value: dt.datetime, tz: str, field: str | None = None) -> dt.datetime:
    """A wall-clock time in the forum's time zone as an aware time.

    A time that does not exist (02:30 on the night the clocks go forward) is refused rather than moved,
    so what is stored is what the person meant. A time that happens twice (02:30 on the night the clocks
    go back) is taken as the first of the two.
    """
    check_datetime(value, field)
    if value.tzinfo is not None:
        return value
    zone = ZoneInfo(tz)
    aware = value.replace(tzinfo=zone, fold=0)
    back = aware.astimezone(dt.UTC).astimezone(zone)
    if back.replace(tzinfo=None) != value:
        raise InvalidInput(_("%(time)s does not exist in %(zone)s: the clocks were moved forward that night. "
                             "Choose a time before or after the change.") % {
            "time": date_format(value, "j F Y H:i"), "zone": tz}, field=field)
    return aware


def parse_local_datetime(value: str | None, field: str | None, tz: str) -> dt.datetime | None:
    """A date and time from a form (datetime-local, in the forum's time zone); empty means none."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise InvalidInput(_("Write the date and time as YYYY-MM-DD HH:MM."), field=field) from exc
    return local_to_aware(parsed, tz, field)


def loads_json(data: str | bytes, field: str | None = None, message: str | None = None) -> Any:
    """JSON from a form field or upload. orjson refuses nesting deeper than 1,024 levels and lone
    surrogates, both of which would otherwise fail later, far from the input."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(message or _("This is not valid JSON."), field=field) from exc


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def visible_text(text: str) -> str:
    """A name as people read it: one way of writing each letter, nothing invisible (control characters,
    zero-width spaces, direction marks), and single spaces."""
    visible = "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c)[0] != "C")
    return " ".join(visible.split())

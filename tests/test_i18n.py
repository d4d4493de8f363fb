"""Swedish first: every user-facing string has a Swedish translation, and the compiled catalogue is current."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import polib
import pytest
from django.core.management import call_command

import lagesbild

PACKAGE = Path(lagesbild.__file__).parent
SV_PO = PACKAGE / "locale" / "sv" / "LC_MESSAGES" / "django.po"
SV_MO = PACKAGE / "locale" / "sv" / "LC_MESSAGES" / "django.mo"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def test_swedish_catalogue_is_complete_and_keeps_placeholders() -> None:
    catalogue = polib.pofile(str(SV_PO))
    assert catalogue.untranslated_entries() == []
    assert catalogue.fuzzy_entries() == []
    for entry in catalogue.translated_entries():
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for translation in translations:
            assert set(PLACEHOLDER.findall(entry.msgid)) == set(PLACEHOLDER.findall(translation)), entry.msgid


def test_compiled_catalogue_matches_the_source() -> None:
    def pairs(catalogue: polib._BaseFile) -> dict[str, object]:
        return {e.msgid: (dict(e.msgstr_plural) if e.msgid_plural else e.msgstr) for e in catalogue if e.msgid}

    source = pairs(polib.pofile(str(SV_PO)))
    compiled = pairs(polib.mofile(str(SV_MO)))
    assert compiled == source, "Run `make messages` to recompile the catalogue."


@pytest.mark.skipif(shutil.which("xgettext") is None and os.environ.get("CI") != "true",
                    reason="gettext is installed by `make test`; outside it this check needs xgettext")
def test_no_string_in_the_code_is_missing_from_the_catalogue(tmp_path: Path, settings: Any) -> None:
    """Run makemessages on a copy of the package: it must find nothing that is not translated already."""
    copy = Path(shutil.copytree(PACKAGE, tmp_path / "lagesbild", ignore=shutil.ignore_patterns("__pycache__")))
    settings.LOCALE_PATHS = [copy / "locale"]
    cwd = Path.cwd()
    os.chdir(copy)
    try:
        call_command("makemessages", locale=["sv"], no_obsolete=True, no_location=True, verbosity=0)
    finally:
        os.chdir(cwd)
    catalogue = polib.pofile(str(copy / "locale" / "sv" / "LC_MESSAGES" / "django.po"))
    assert [e.msgid for e in catalogue.untranslated_entries()] == []
    assert [e.msgid for e in catalogue.fuzzy_entries()] == []


def test_translation_functions_are_imported_under_names_makemessages_knows() -> None:
    """makemessages finds `_(...)`, `gettext(...)` and friends; an alias such as `_lazy` hides strings from it."""
    alias = re.compile(r"import .*\b(?:gettext|gettext_lazy|pgettext|ngettext)\b as (?!_\b)(\w+)")
    offenders = [f"{path.relative_to(PACKAGE)}: {match.group(0)}"
                 for path in PACKAGE.rglob("*.py") for match in alias.finditer(path.read_text())]
    assert offenders == []

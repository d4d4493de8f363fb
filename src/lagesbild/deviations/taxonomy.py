"""The default category taxonomy (DESIGN.md §5). Keys are stable English slugs, names Swedish first.

Colours are chosen to be told apart on a light map and to reach 3:1 contrast against white.
"""

from __future__ import annotations

from typing import Any

# (key, Swedish, English, colour, [(key, Swedish, English), ...])
DEFAULT_TAXONOMY: list[tuple[str, str, str, str, list[tuple[str, str, str]]]] = [
    ("damage", "Skadegörelse", "Vandalism", "#b3261e", [
        ("graffiti", "Klotter", "Graffiti"),
        ("broken_glass", "Krossat glas", "Broken glass"),
        ("destroyed_equipment", "Förstörd utrustning", "Destroyed equipment"),
    ]),
    ("littering", "Nedskräpning", "Littering", "#6d5b00", [
        ("litter", "Skräp", "Litter"),
        ("dumping", "Dumpning", "Dumping"),
        ("syringes", "Sprutor/kanyler", "Syringes/needles"),
    ]),
    ("lighting", "Belysning", "Lighting", "#8a4b00", [
        ("broken_lighting", "Trasig belysning", "Broken lighting"),
        ("dark_place", "Mörk plats", "Dark place"),
    ]),
    ("physical", "Fysisk miljö", "Physical environment", "#2e6b30", [
        ("overgrown_vegetation", "Skymmande växtlighet", "Obstructing vegetation"),
        ("broken_fence", "Trasigt staket", "Broken fence"),
        ("abandoned_vehicle", "Övergiven bil/cykel", "Abandoned car/bicycle"),
    ]),
    ("drugs", "Narkotika", "Drugs", "#6a1b9a", [
        ("suspected_dealing", "Misstänkt försäljning", "Suspected dealing"),
        ("drug_use", "Användning", "Use"),
        ("drug_hangout", "Tillhåll", "Hangout"),
    ]),
    ("gathering", "Samlingar/ordningsstörning", "Gatherings/disorder", "#0b5cad", [
        ("youth_groups", "Ungdomsgrupper", "Groups of young people"),
        ("drunkenness", "Fylleri", "Drunkenness"),
        ("disturbance", "Störande beteende", "Disturbing behaviour"),
    ]),
    ("violence", "Våld/hot", "Violence/threats", "#7f0000", [
        ("assault", "Misshandel", "Assault"),
        ("threat", "Hot", "Threat"),
        ("robbery", "Rån", "Robbery"),
    ]),
    ("fire", "Brand", "Fire", "#c2410c", [
        ("arson", "Anlagd brand", "Arson"),
        ("car_fire", "Bilbrand", "Car fire"),
        ("container_fire", "Containerbrand", "Container fire"),
    ]),
    ("theft", "Stöld/inbrott", "Theft/burglary", "#00695c", [
        ("burglary", "Inbrott", "Burglary"),
        ("bicycle_theft", "Cykelstöld", "Bicycle theft"),
        ("shoplifting", "Butiksstöld", "Shoplifting"),
    ]),
    ("traffic", "Trafik", "Traffic", "#37474f", [
        ("reckless_driving", "Vårdslös körning", "Reckless driving"),
        ("moped", "Moped/epa", "Moped/A-tractor"),
        ("illegal_parking", "Felparkering", "Illegal parking"),
    ]),
    ("unsafe_place", "Otrygg plats", "Unsafe place", "#ad1457", [
        ("perceived_unsafety", "Upplevd otrygghet", "Perceived unsafety"),
    ]),
    ("other", "Övrigt", "Other", "#5f5f5f", []),
]


def seed_default_taxonomy(category_model: Any) -> None:
    """Create the default categories that do not exist yet. Safe to run again."""
    order = 0
    for key, name_sv, name_en, color, children in DEFAULT_TAXONOMY:
        order += 10
        parent, _ = category_model.objects.get_or_create(
            forum=None, key=key,
            defaults={"name_sv": name_sv, "name_en": name_en, "color": color, "sort_order": order},
        )
        for child_order, (child_key, child_sv, child_en) in enumerate(children, start=1):
            category_model.objects.get_or_create(
                forum=None, key=child_key,
                defaults={"name_sv": child_sv, "name_en": child_en, "color": color,
                          "sort_order": order + child_order, "parent": parent},
            )

"""The demo forum Farsta (DESIGN.md §8): organisations, one demo user each, meetings and ~2,000
synthetic deviations over 18 months, concentrated at a few recurring places with daily and weekly rhythms.

Everything here is invented. The random generator is seeded, so every install sees the same picture.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from lagesbild import geometry
from lagesbild.audit.models import AuditEvent
from lagesbild.deviations.derived import derived_fields
from lagesbild.deviations.models import Category, Deviation, DeviationShare
from lagesbild.deviations.taxonomy import seed_default_taxonomy
from lagesbild.forums.models import Forum, Membership, Organisation, Role, User
from lagesbild.meetings.models import Action, AgendaItem, FollowUp, Meeting, Protocol
from lagesbild.places.models import Place

DEMO_PASSWORD = "lagesbild-demo"  # noqa: S105 - documented in README, demo only
STOCKHOLM = ZoneInfo("Europe/Stockholm")

# Roughly Farsta stadsdelsområde (Farsta, Hökarängen, Gubbängen, Fagersjö, Sköndal, Larsboda), WGS84.
FARSTA_AREA: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [[
        [18.040, 59.262], [18.075, 59.270], [18.110, 59.266], [18.150, 59.250], [18.155, 59.225],
        [18.120, 59.214], [18.070, 59.216], [18.045, 59.230], [18.040, 59.262],
    ]],
}

# (kind, name, user e-mail, first name, last name, role)
ORGANISATIONS = [
    (Organisation.Kind.DISTRICT, "Farsta stadsdelsförvaltning", "samordnare@farsta.demo", "Sara", "Lind",
     Role.COORDINATOR),
    (Organisation.Kind.POLICE, "Lokalpolisområde Farsta", "polis@farsta.demo", "Johan", "Ek", Role.ORG_LEAD),
    (Organisation.Kind.HOUSING, "Bostadsbolaget Söderhem", "vicevard@farsta.demo", "Amir", "Haddad",
     Role.REPORTER),
    (Organisation.Kind.HOUSING, "Farsta Fastigheter", "fastighet@farsta.demo", "Lena", "Berg", Role.ORG_LEAD),
    (Organisation.Kind.SCHOOL, "Farsta grundskola", "skola@farsta.demo", "Maria", "Holm", Role.REPORTER),
    (Organisation.Kind.CHURCH, "Farsta församling", "kyrkan@farsta.demo", "Per", "Sjöberg", Role.REPORTER),
    (Organisation.Kind.NIGHT_WALKERS, "Nattvandrarna Farsta", "nattvandrare@farsta.demo", "Fatima", "Ali",
     Role.REPORTER),
    (Organisation.Kind.BUSINESS, "Farsta Centrumförening", "foretagare@farsta.demo", "Erik", "Nyström",
     Role.VIEWER),
    (Organisation.Kind.TRANSIT, "Tunnelbanan Söder", "trafik@farsta.demo", "Nils", "Åberg", Role.REPORTER),
    (Organisation.Kind.SECURITY, "Trygghetsvärdarna Farsta", "trygghetsvard@farsta.demo", "Sofia", "Karlsson",
     Role.REPORTER),
    (Organisation.Kind.DISTRICT, "Fältassistenterna Farsta", "falt@farsta.demo", "Ali", "Yilmaz", Role.REPORTER),
    (Organisation.Kind.OTHER, "Trafikkontoret", "trafikkontoret@farsta.demo", "Karin", "Olsson", Role.REPORTER),
]


@dataclass(frozen=True)
class Hotspot:
    name: str
    lon: float
    lat: float
    spread_m: float
    weight: float
    categories: dict[str, float]  # subcategory key -> weight
    reporters: dict[str, float]  # organisation kind -> weight
    night: float  # 0 = daytime problem, 1 = night-time problem


HOTSPOTS = [
    Hotspot("Farsta centrum, torget", 18.0912, 59.2437, 60, 0.22,
            {"youth_groups": 4, "disturbance": 3, "graffiti": 3, "litter": 3, "shoplifting": 2, "threat": 1,
             "drunkenness": 2},
            {"security": 4, "police": 2, "business": 2, "night_walkers": 1}, 0.6),
    Hotspot("Farsta tunnelbanestation", 18.0937, 59.2443, 45, 0.18,
            {"suspected_dealing": 3, "youth_groups": 2, "perceived_unsafety": 3, "graffiti": 2, "broken_glass": 1,
             "assault": 1, "robbery": 1},
            {"transit": 4, "police": 3, "night_walkers": 1}, 0.8),
    Hotspot("Hökarängsplan", 18.0822, 59.2574, 70, 0.12,
            {"drunkenness": 3, "disturbance": 2, "litter": 2, "broken_lighting": 1, "graffiti": 2},
            {"housing": 3, "church": 1, "night_walkers": 2, "police": 1}, 0.5),
    Hotspot("Parken vid Farstaviken", 18.0985, 59.2392, 110, 0.12,
            {"drug_hangout": 3, "syringes": 2, "dark_place": 3, "broken_lighting": 2, "overgrown_vegetation": 2,
             "perceived_unsafety": 2},
            {"district": 3, "housing": 2, "night_walkers": 2, "police": 1}, 0.7),
    Hotspot("P-huset vid centrum", 18.0874, 59.2427, 35, 0.10,
            {"car_fire": 2, "container_fire": 1, "burglary": 2, "destroyed_equipment": 2, "perceived_unsafety": 2,
             "drug_use": 2, "dark_place": 1},
            {"security": 3, "police": 2, "housing": 1}, 0.7),
]

# Spread over the whole district: (subcategory key, weight, reporter kinds)
BACKGROUND = [
    ("graffiti", 5, ["housing", "school", "district"]), ("litter", 5, ["housing", "district"]),
    ("dumping", 3, ["housing", "district"]), ("broken_lighting", 4, ["housing", "district", "night_walkers"]),
    ("overgrown_vegetation", 2, ["district", "housing"]), ("broken_fence", 2, ["housing", "school"]),
    ("abandoned_vehicle", 2, ["other", "housing"]), ("reckless_driving", 3, ["police", "school", "other"]),
    ("moped", 3, ["police", "school", "night_walkers"]), ("illegal_parking", 2, ["other"]),
    ("bicycle_theft", 2, ["police", "housing"]), ("burglary", 2, ["police", "housing"]),
    ("youth_groups", 2, ["night_walkers", "district", "school"]), ("perceived_unsafety", 2, ["church", "school"]),
    ("container_fire", 1, ["housing", "police"]), ("threat", 1, ["police", "school"]),
    ("other", 1, ["church", "district"]),
]

DESCRIPTIONS = {
    "graffiti": ["Nytt klotter på fasaden.", "Klotter på elskåp och väggar.", "Taggar på busskuren."],
    "broken_glass": ["Krossad ruta i entrén.", "Glassplitter på marken vid trappan."],
    "destroyed_equipment": ["Sönderslagen bänk.", "Förstörd biljettautomat.", "Trasig papperskorg."],
    "litter": ["Mycket skräp efter helgen.", "Nedskräpat runt bänkarna."],
    "dumping": ["Dumpade möbler vid soprummet.", "Säckar med byggavfall dumpade."],
    "syringes": ["Kanyler hittade i buskarna.", "Sprutor vid lekplatsens staket."],
    "broken_lighting": ["Gatubelysningen släckt längs gångvägen.", "Trasig lampa i porten."],
    "dark_place": ["Mörkt parti längs stigen, upplevs otryggt.", "Ingen belysning vid tunneln."],
    "overgrown_vegetation": ["Buskar skymmer sikten längs gångvägen.", "Växtlighet täcker lampan."],
    "broken_fence": ["Staketet nedtrampat.", "Hål i stängslet mot spåret."],
    "abandoned_vehicle": ["Övergiven cykel sedan flera veckor.", "Avställd bil utan skyltar."],
    "suspected_dealing": ["Misstänkt försäljning vid uppgången, kvällstid.", "Återkommande överlämningar."],
    "drug_use": ["Spår av användning i trapphuset.", "Folie och tändare i hörnet."],
    "drug_hangout": ["Tillhåll under bron, flera kvällar i rad.", "Samlingsplats med spår av narkotika."],
    "youth_groups": ["Större grupp ungdomar, stökigt.", "Grupp samlas vid entrén sena kvällar."],
    "drunkenness": ["Berusade personer på bänkarna.", "Fylleri och högljudda grupper."],
    "disturbance": ["Störande beteende mot förbipasserande.", "Bråk och skrik, vakter tillkallade."],
    "assault": ["Misshandel anmäld, polis på plats.", "Slagsmål mellan två grupper."],
    "threat": ["Personal hotad.", "Hot mot förbipasserande."],
    "robbery": ["Rån mot ungdom vid spärrarna.", "Rånförsök, gärningspersoner flydde."],
    "arson": ["Anlagd brand i papperskorg."],
    "car_fire": ["Bilbrand på plan 2.", "Brand i bil, räddningstjänsten släckte."],
    "container_fire": ["Containerbrand bakom butikerna.", "Brand i soptunna."],
    "burglary": ["Inbrott i förråd.", "Bilinbrott, krossad sidoruta."],
    "bicycle_theft": ["Flera cyklar stulna från ställen.", "Uppklippta lås vid cykelstället."],
    "shoplifting": ["Butiksstöld, ungdomar sprang mot tunnelbanan.", "Upprepade stölder i livsmedelsbutik."],
    "reckless_driving": ["Vårdslös körning förbi skolan.", "Bilar kör fort genom bostadsområdet."],
    "moped": ["Mopeder kör på gångvägen.", "EPA-traktorer spelar hög musik sent."],
    "illegal_parking": ["Felparkerade bilar blockerar räddningsvägen."],
    "perceived_unsafety": ["Boende upplever platsen som otrygg kvällstid.", "Föräldrar undviker platsen."],
    "other": ["Övrig iakttagelse vid trygghetsvandring."],
}


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _offset(rng: random.Random, lon: float, lat: float, spread_m: float) -> tuple[float, float]:
    dx, dy = rng.gauss(0, spread_m), rng.gauss(0, spread_m)
    return lon + dx / (111_320 * math.cos(math.radians(lat))), lat + dy / 110_540


def _random_in_area(rng: random.Random) -> tuple[float, float]:
    min_lon, min_lat, max_lon, max_lat = geometry.area_bounds(FARSTA_AREA) or (0, 0, 0, 0)
    while True:
        lon, lat = rng.uniform(min_lon, max_lon), rng.uniform(min_lat, max_lat)
        if geometry.area_contains(FARSTA_AREA, lon, lat):
            return lon, lat


def _when(rng: random.Random, now: dt.datetime, days: int, night: float) -> dt.datetime:
    """A time in the last `days` days with weekly and daily rhythms (Stockholm local time)."""
    while True:
        # A slight upward trend: more recent days are a little more likely.
        day = days * (1 - math.sqrt(rng.random()) * 0.999) if rng.random() < 0.3 else rng.uniform(0, days)
        local_day = (now - dt.timedelta(days=day)).astimezone(STOCKHOLM).date()
        weekend = local_day.weekday() >= 4
        if not weekend and rng.random() < 0.25:
            continue  # Fridays and Saturdays carry more
        hour = rng.gauss(21.5, 2.5) % 24 if rng.random() < night else rng.gauss(13, 3) % 24
        local = dt.datetime.combine(local_day, dt.time(int(hour), rng.randrange(60)), tzinfo=STOCKHOLM)
        if local.astimezone(dt.UTC) <= now:
            return local.astimezone(dt.UTC)


def _status(rng: random.Random, age_days: float) -> str:
    if age_days < 14:
        return rng.choices(["new", "reviewed"], [3, 1])[0]
    if age_days < 60:
        return rng.choices(["new", "reviewed", "in_progress", "resolved", "dismissed"], [1, 3, 3, 3, 1])[0]
    return rng.choices(["reviewed", "in_progress", "resolved", "dismissed"], [2, 1, 8, 2])[0]


def create_demo_forum(count: int = 2000, slug: str = "farsta", name: str = "Farsta trygghetsforum",
                      seed: int = 2023, months: int = 18, with_users: bool = True) -> Forum:
    """Create the demo forum. `count` and `slug` let benchmarks build bigger forums the same way."""
    rng = random.Random(seed)
    now = timezone.now()
    days = int(months * 30.4)
    with transaction.atomic():
        seed_default_taxonomy(Category)  # normally there from the migration; a flushed test database lacks it
        # The demo is for trying the tool at once, so it does not ask for an authenticator app.
        forum = Forum.objects.create(slug=slug, name=name, area=FARSTA_AREA, require_two_factor=False)
        orgs: dict[str, list[Organisation]] = {}
        members: dict[int, Membership] = {}
        for kind, org_name, email, first, last, role in ORGANISATIONS:
            org = Organisation.objects.create(forum=forum, name=org_name, kind=kind)
            orgs.setdefault(str(kind), []).append(org)
            if with_users:
                user = User.objects.filter(email=email).first() or User.objects.create_user(
                    email=email, password=DEMO_PASSWORD, first_name=first, last_name=last)
                members[org.pk] = Membership.objects.create(forum=forum, user=user, organisation=org, role=role)

        categories = {c.key: c for c in Category.objects.filter(forum__isnull=True)}
        police = orgs["police"][0]
        rows: list[Deviation] = []
        shares: list[tuple[int, Organisation]] = []
        # The demo's safety walk reports its findings as deviations of their own; they count towards `count`.
        walk_findings = DEMO_WALK_FINDINGS if members and count >= DEMO_WALK_FINDINGS else 0
        for index in range(count - walk_findings):
            hotspot = None
            if rng.random() < 0.62:
                hotspot = rng.choices(HOTSPOTS, [h.weight for h in HOTSPOTS])[0]
                key = _pick(rng, hotspot.categories)
                reporter_kind = _pick(rng, hotspot.reporters)
                lon, lat = _offset(rng, hotspot.lon, hotspot.lat, hotspot.spread_m)
                if not geometry.area_contains(FARSTA_AREA, lon, lat):
                    lon, lat = hotspot.lon, hotspot.lat
                night = hotspot.night
            else:
                key, _w, kinds = rng.choices(BACKGROUND, [b[1] for b in BACKGROUND])[0]
                reporter_kind = rng.choice(kinds)
                lon, lat = _random_in_area(rng)
                night = 0.6 if key in {"youth_groups", "moped", "container_fire", "perceived_unsafety"} else 0.2
            org = rng.choice(orgs.get(reporter_kind) or orgs["district"])
            observed = _when(rng, now, days, night)
            age = (now - observed).total_seconds() / 86400
            visibility = Deviation.Visibility.FORUM
            if org == police and rng.random() < 0.3:
                visibility = rng.choice([Deviation.Visibility.ORGANISATION, Deviation.Visibility.NAMED])
            category = categories[key]
            description = rng.choice(DESCRIPTIONS.get(key, DESCRIPTIONS["other"]))
            place = hotspot.name if hotspot else ""
            lon, lat = round(lon, 6), round(lat, 6)
            member = members.get(org.pk)
            rows.append(Deviation(
                forum=forum, category=category, lon=lon, lat=lat, **derived_fields(lon, lat, observed, forum.timezone),
                place_name=place, observed_at=observed,
                observed_until=observed + dt.timedelta(hours=rng.randint(1, 4)) if rng.random() < 0.1 else None,
                reported_at=min(now, observed + dt.timedelta(minutes=rng.randint(5, 60 * 30))),
                updated_at=now, organisation=org, reporter=member.user if member else None,
                description=description,
                severity=rng.choices(["low", "medium", "high"], [3, 5, 2 if key in {"assault", "robbery",
                                                                                    "car_fire"} else 1])[0],
                visibility=visibility, status=_status(rng, age),
                source=rng.choices(["manual", "walk"], [9, 1])[0],
                search_text=f"{place}\n{description}".lower(),
            ))
            if visibility == Deviation.Visibility.NAMED:
                shares.append((index, orgs["district"][0]))
        created = Deviation.objects.bulk_create(rows, batch_size=2000)
        DeviationShare.objects.bulk_create(
            [DeviationShare(forum=forum, deviation=created[i], organisation=o) for i, o in shares], batch_size=2000)
        AuditEvent.objects.bulk_create([
            AuditEvent(forum=forum, actor=d.reporter, organisation=d.organisation, action=AuditEvent.Action.CREATE,
                       object_type="deviation", object_id=d.pk, at=d.reported_at,
                       changes={"category": d.category.key, "status": "new"})
            for d in created
        ], batch_size=2000)
        if members and len(created) >= 50:
            _lines_and_areas(forum, created[:len(DEMO_SHAPES)], categories)
        _meetings_places_and_actions(forum, orgs, members, now, months)
        if walk_findings:
            _walks(forum, orgs, members, now)
    return forum


# Deviations drawn as a line or an area: (category, shape, place, description).
DEMO_SHAPES = [
    ("dark_place", {"type": "LineString", "coordinates": [[18.0958, 59.2407], [18.0975, 59.2399], [18.0991, 59.2396],
                                                          [18.1008, 59.2388]]},
     "Gångvägen längs Farstaviken", "Hela gångvägen är mörk efter 17; tre lyktstolpar ur funktion."),
    ("overgrown_vegetation", {"type": "Polygon", "coordinates": [[[18.0944, 59.2426], [18.0959, 59.2425],
                                                                  [18.0961, 59.2432], [18.0946, 59.2434],
                                                                  [18.0944, 59.2426]]]},
     "Slänten bakom Farsta centrum", "Slänten är igenvuxen, skymmer sikten mot gångvägen."),
    ("reckless_driving", {"type": "LineString", "coordinates": [[18.0868, 59.2455], [18.0897, 59.2449],
                                                                [18.0925, 59.2446]]},
     "Farstagången", "Mopeder kör i hög fart på gång- och cykelvägen kvällstid."),
]


def _lines_and_areas(forum: Forum, rows: list[Deviation], categories: dict[str, Category]) -> None:
    """A few of the demo's deviations drawn as a line or an area, as a forum would: a dark path, an overgrown
    slope, a stretch where mopeds race."""
    from lagesbild.deviations import services
    from lagesbild.deviations.shapes import parse

    for deviation, (key, drawn, place, description) in zip(rows, DEMO_SHAPES, strict=True):
        checked = parse(drawn, FARSTA_AREA)
        values = {"category": categories[key], "lon": checked.lon, "lat": checked.lat, "place_name": place,
                  "description": description, "search_text": f"{place}\n{description}".lower(),
                  **services.shape_columns(checked.geojson),
                  **derived_fields(checked.lon, checked.lat, deviation.observed_at, forum.timezone)}
        Deviation.objects.filter(pk=deviation.pk).update(**values)
        deviation.refresh_from_db()
        services.replace_cells(deviation)


# (stop, lon, lat, [(aspect, assessment, note, proposal)])
DEMO_WALK_STOPS = [
    ("Gångtunneln under Farstaleden", 18.0905, 59.2418, [
        ("lighting", "problem", "Två av fyra armaturer i tunneln släckta; mörkt i mitten.", "Byt armaturerna"),
        ("sight_lines", "ok", "", ""), ("unsafe", "problem", "Flera i gruppen undviker tunneln kvällstid.", "")]),
    ("Parken vid Farstaviken", 18.0985, 59.2392, [
        ("vegetation", "problem", "Buskaget vid lekplatsen skymmer gångvägen.", "Röj buskaget vid gångvägen"),
        ("lighting", "ok", "Nya lampor längs gångvägen fungerar.", ""), ("maintenance", "ok", "", "")]),
    ("Farsta tunnelbanestation", 18.0937, 59.2443, [
        ("signage", "problem", "Skylten mot bussarna är nedklottrad och går inte att läsa.", ""),
        ("sight_lines", "ok", "", "")]),
    ("Farsta centrum, torget", 18.0912, 59.2437, [("maintenance", "ok", "Rent och städat.", "")]),
]
DEMO_WALK_FINDINGS = sum(1 for *_stop, checks in DEMO_WALK_STOPS for check in checks if check[1] == "problem")


def _walks(forum: Forum, orgs: dict[str, list[Organisation]], members: dict[int, Membership],
           now: dt.datetime) -> None:
    """A safety walk that the housing company arranged five weeks ago, with its track and recorded findings,
    and one the district plans for next week."""
    from lagesbild.walks import services as walks
    from lagesbild.walks.models import Walk, WalkCheck, WalkParticipant, WalkStop

    housing = members[orgs["housing"][0].pk]
    started = (now - dt.timedelta(days=35)).astimezone(STOCKHOLM).replace(hour=18, minute=0, second=0,
                                                                           microsecond=0)
    walked = Walk.objects.create(forum=forum, organisation=housing.organisation, created_by=housing.user,
                                 title="Trygghetsvandring Farsta centrum och Farstaviken",
                                 meeting_point="Vid tunnelbanans entré", planned_at=started, started_at=started,
                                 ended_at=started + dt.timedelta(minutes=95),
                                 created_at=started - dt.timedelta(days=20),
                                 summary="Ett tiotal deltagare. Belysningen i gångtunneln och buskaget i parken "
                                         "var det gruppen tog upp mest.")
    for name, affiliation in (("Karin Ek", "Boende, Brf Tallkronan"), ("Omar Haddad", "Boende"),
                              ("Lena Berg", "Bostadsbolaget"), ("Polis i området", "Polisen"),
                              ("Nils Åberg", "Stadsdelsförvaltningen")):
        WalkParticipant.objects.create(forum=forum, walk=walked, name=name, affiliation=affiliation)
    track: list[list[float]] = []
    seconds = started.timestamp()
    previous = None
    for position, (name, lon, lat, checks) in enumerate(DEMO_WALK_STOPS, start=1):
        stop = WalkStop.objects.create(forum=forum, walk=walked, position=position, name=name, lon=lon, lat=lat)
        for aspect, assessment, note, proposal in checks:
            WalkCheck.objects.create(forum=forum, stop=stop, aspect=aspect, assessment=assessment, note=note,
                                     proposal=proposal)
        if previous is not None:  # the walked track: twenty points between stops, a little off the straight line
            for step in range(1, 21):
                f = step / 20
                track.append([round(previous[0] + (lon - previous[0]) * f + 0.002 * (f - f * f), 6),
                              round(previous[1] + (lat - previous[1]) * f, 6), round(seconds, 1), housing.user_id])
                seconds += 60
        previous = (lon, lat)
        seconds += 600  # ten minutes at each stop
    walked.track = track
    walked.save(update_fields=["track"])
    walks.record_findings(housing, walked.pk)

    district = members[orgs["district"][0].pk]
    coming = (now + dt.timedelta(days=7)).astimezone(STOCKHOLM).replace(hour=18, minute=30, second=0,
                                                                         microsecond=0)
    planned = Walk.objects.create(forum=forum, organisation=district.organisation, created_by=district.user,
                                  title="Trygghetsvandring Hökarängen", meeting_point="Hökarängsplan",
                                  planned_at=coming)
    for position, (name, lon, lat) in enumerate((("Hökarängsplan", 18.0822, 59.2574),
                                                 ("Gångvägen mot skolan", 18.0846, 59.2559),
                                                 ("Garagen vid Pepparvägen", 18.0869, 59.2548)), start=1):
        WalkStop.objects.create(forum=forum, walk=planned, position=position, name=name, lon=lon, lat=lat)
    WalkParticipant.objects.create(forum=forum, walk=planned, name="Nils Åberg", affiliation="Stadsdelsförvaltningen")


# The recurring places the forum has named. The parking garage is left out: the places page
# suggests it, since deviations recur there.
DEMO_PLACES = [("Farsta centrum, torget", 90), ("Farsta tunnelbanestation", 70), ("Hökarängsplan", 110),
               ("Parken vid Farstaviken", 160)]
# (place, responsible organisation kind, what, months before now decided, status)
DEMO_ACTIONS = [
    ("Parken vid Farstaviken", "district", "Byta trasig belysning längs gångvägen", 9, Action.Status.DONE),
    ("Parken vid Farstaviken", "district", "Röja skymmande buskage vid lekplatsen", 7, Action.Status.DONE),
    ("Farsta tunnelbanestation", "transit", "Fler trygghetsvärdar vid spärrarna kvällstid", 5, Action.Status.DONE),
    ("Farsta centrum, torget", "night_walkers", "Nattvandring fredagar och lördagar", 3, Action.Status.IN_PROGRESS),
    ("Hökarängsplan", "housing", "Sanera klotter inom 24 timmar", 2, Action.Status.PLANNED),
    ("Farsta centrum, torget", "business", "Belysning vid butikernas lastintag", 1, Action.Status.PLANNED),
]


def _meetings_places_and_actions(forum: Forum, orgs: dict[str, list[Organisation]],
                                 members: dict[int, Membership], now: dt.datetime, months: int) -> None:
    """Monthly meetings on the second Tuesday at 14:00 back to the start of the period, places at the
    hotspots, and actions decided at meetings: some done, some under way, some overdue."""
    from lagesbild.meetings import protocol
    from lagesbild.places.services import circle_bbox

    places = {}
    for name, radius in DEMO_PLACES:
        hotspot = next(h for h in HOTSPOTS if h.name == name)
        x, y = geometry.to_sweref99tm(hotspot.lon, hotspot.lat)
        bbox = circle_bbox(hotspot.lon, hotspot.lat, radius)
        places[name] = Place.objects.create(
            forum=forum, name=name, lon=hotspot.lon, lat=hotspot.lat, sweref_x=x, sweref_y=y, radius_m=radius,
            min_lon=bbox[0], min_lat=bbox[1], max_lon=bbox[2], max_lat=bbox[3],
            created_at=now - dt.timedelta(days=months * 30))
    month = now.astimezone(STOCKHOLM).date().replace(day=1)
    helds = []
    for _ in range(months):
        tuesday = month + dt.timedelta(days=(1 - month.weekday()) % 7 + 7)
        held = dt.datetime.combine(tuesday, dt.time(14), tzinfo=STOCKHOLM)
        if held < now:
            helds.append(held)
        month = (month - dt.timedelta(days=1)).replace(day=1)
    helds.sort()
    meetings = []
    for i, held in enumerate(helds):
        start = helds[i - 1] if i else held - dt.timedelta(days=30)
        meetings.append(Meeting.objects.create(forum=forum, held_at=held, title=f"Avstämningsmöte {held:%Y-%m-%d}",
                                               location="Farsta stadsdelsförvaltning, sal 2",
                                               period_start=start, period_end=held))
    coordinator = next(m for m in members.values() if m.is_coordinator) if members else None
    for place_name, kind, title, months_ago, status in DEMO_ACTIONS:
        index = max(0, len(meetings) - 1 - months_ago)
        if not meetings:
            break
        meeting = meetings[index]
        org = orgs.get(kind, orgs["district"])[0]
        item = AgendaItem.objects.create(forum=forum, meeting=meeting, position=1, kind=AgendaItem.Kind.PLACE,
                                         title=f"Plats: {place_name}", place=places[place_name],
                                         notes="Gick igenom avvikelserna vid platsen.", decision=title + ".")
        created = meeting.held_at
        due = (created + dt.timedelta(days=45)).date()
        action = Action.objects.create(
            forum=forum, title=title, organisation=org, due_date=due, place=places[place_name],
            lon=places[place_name].lon, lat=places[place_name].lat, meeting=meeting, agenda_item=item,
            status=status, created_at=created, updated_at=created, created_by=coordinator.user if coordinator else None,
            completed_at=created + dt.timedelta(days=30) if status == Action.Status.DONE else None,
            result="Genomfört enligt plan." if status == Action.Status.DONE else "")
        member = members.get(org.pk)
        FollowUp.objects.create(forum=forum, action=action, organisation=org, author=member.user if member else None,
                                body="Arbetet har påbörjats.", status=Action.Status.IN_PROGRESS,
                                created_at=created + dt.timedelta(days=10))
        if status == Action.Status.DONE:
            FollowUp.objects.create(forum=forum, action=action, organisation=org,
                                    author=member.user if member else None, body="Klart.",
                                    status=Action.Status.DONE, created_at=created + dt.timedelta(days=30))
    # The latest meetings have published protocols.
    for meeting in meetings[-3:]:
        if not meeting.items.exists():
            AgendaItem.objects.create(forum=forum, meeting=meeting, position=1, kind=AgendaItem.Kind.CATEGORIES,
                                      title="Nya avvikelser per kategori", notes="Inga särskilda beslut.")
        meeting.attending_organisations.set([o for group in orgs.values() for o in group][:8],
                                             through_defaults={"forum": forum})
        meeting.state = Meeting.State.PUBLISHED
        meeting.save(update_fields=["state"])
        Protocol.objects.create(forum=forum, meeting=meeting, version=1, published_at=meeting.held_at,
                                published_by=coordinator.user if coordinator else None,
                                content=protocol.snapshot(meeting, version=1))


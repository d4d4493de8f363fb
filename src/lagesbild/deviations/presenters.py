"""How a deviation looks to one member: the same dict feeds the API and the detail panel."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from lagesbild.deviations import services, shapes
from lagesbild.deviations.fields import fields_for
from lagesbild.deviations.models import Deviation
from lagesbild.forums.models import Membership
from lagesbild.interop import handoff


def _person(user: Any) -> str | None:
    return user.display_name if user is not None else None


# The parts below are also served on their own (comments, history, new photos), without the rest.

def photos_of(membership: Membership, deviation: Deviation) -> list[dict[str, Any]]:
    slug = membership.forum.slug
    return [
        {
            "id": p.pk,
            "width": p.width,
            "height": p.height,
            "url": reverse("api:get_photo", kwargs={"forum": slug, "photo_id": p.pk}),
            "thumbnailUrl": reverse("api:get_photo_thumbnail", kwargs={"forum": slug, "photo_id": p.pk}),
        }
        for p in deviation.photos.all()
    ]


def comments_of(deviation: Deviation) -> list[dict[str, Any]]:
    return [
        {"id": c.pk, "body": c.body, "createdAt": c.created_at, "author": _person(c.author),
         "organisation": c.organisation.name}
        for c in deviation.comments.select_related("author", "organisation")
    ]


def history_entries(membership: Membership, deviation: Deviation) -> list[dict[str, Any]]:
    """Who changed what. People are named only to members of their own organisation."""
    return [
        {"action": e.action, "actionLabel": e.get_action_display(), "at": e.at,
         "organisation": e.organisation.name if e.organisation else None,
         "actor": _person(e.actor) if e.organisation_id == membership.organisation_id else None,
         "changes": e.changes}
        for e in services.history_of(deviation)
    ]


def deviation_detail(membership: Membership, deviation: Deviation) -> dict[str, Any]:
    same_org = deviation.organisation_id == membership.organisation_id
    passed = handoff.describe(deviation)
    category = deviation.category
    parent = category.parent
    return {
        "id": deviation.pk,
        "version": deviation.version,
        "category": {"key": category.key, "name": category.name, "color": category.color,
                     "parent": {"key": parent.key, "name": parent.name} if parent else None},
        "lon": deviation.lon,
        "lat": deviation.lat,
        "shape": deviation.shape,
        "shapeSize": shapes.describe(deviation.shape),
        # Where it is, in words, when the report names no place: from the forum's own places.
        "whereabouts": whereabouts(deviation),
        "sweref99tm": {"x": deviation.sweref_x, "y": deviation.sweref_y},
        "placeName": deviation.place_name,
        "observedAt": deviation.observed_at,
        "observedUntil": deviation.observed_until,
        "reportedAt": deviation.reported_at,
        "updatedAt": deviation.updated_at,
        "organisation": {"id": deviation.organisation_id, "name": deviation.organisation.name},
        # Other organisations see who reported as an organisation, not as a named person.
        "reporter": _person(deviation.reporter) if same_org else None,
        "description": deviation.description,
        "severity": deviation.severity,
        "severityLabel": deviation.get_severity_display(),
        "visibility": deviation.visibility,
        "visibilityLabel": deviation.get_visibility_display(),
        "sharedWith": [
            {"id": s.organisation_id, "name": s.organisation.name}
            for s in deviation.shares.select_related("organisation")
        ],
        "status": deviation.status,
        "statusLabel": deviation.get_status_display(),
        "source": deviation.source,
        "sourceLabel": source_label(membership, deviation),
        # The forum's own fields of its category, filled in or not (one removed since is not shown).
        "fields": [{"key": d.key, "label": d.label, "kind": d.kind, "value": (deviation.fields or {}).get(d.key)}
                   for d in fields_for(deviation.forum, category)],
        "photos": photos_of(membership, deviation),
        "comments": comments_of(deviation),
        "history": history_entries(membership, deviation),
        "police": {
            "flaggedAt": deviation.police_flagged_at,
            "flaggedBy": deviation.police_flagged_org.name if deviation.police_flagged_org else None,
            "reportReference": deviation.police_report_reference or None,
            "reportedAt": deviation.police_reported_at,
        },
        "handOff": passed,
        # The owners' fault-report systems it may be passed to (none once it has been).
        "faultSystems": [] if passed else [
            {"id": system.pk, "name": system.name} for system in handoff.systems_for(membership, deviation)],
        "permissions": {
            "flagForPolice": membership.can_flag_for_police,
            "recordPoliceReport": membership.can_record_police_report_of(deviation.organisation_id),
            "edit": services.can_edit(membership, deviation),
            "changeStatus": services.can_change_status(membership, deviation),
            "comment": membership.can_comment,
        },
        "sameOrganisation": same_org,
        # The forum's named places it lies in, and the actions about it: both are the forum's, seen by all.
        "places": [{"id": p.pk, "name": p.name, "url": reverse("place", kwargs={"forum": membership.forum.slug,
                                                                                 "place_id": p.pk})}
                   for p in places_of(deviation)],
        "actions": [{"id": a.pk, "title": a.title, "statusLabel": a.get_status_display(),
                     "url": reverse("action", kwargs={"forum": membership.forum.slug, "action_id": a.pk})}
                    for a in deviation.actions.all()],
    }


def source_label(membership: Membership, deviation: Deviation) -> str:
    """How it came in. The importing organisation also reads which import ("Import 12, 2026-11-30 (file.csv)"),
    to find it and undo it; the file's name is theirs, not the forum's."""
    label = str(deviation.get_source_display())
    batch = deviation.import_batch if deviation.import_batch_id else None
    if batch is None or batch.organisation_id != membership.organisation_id:
        return label
    when = timezone.localtime(batch.imported_at or batch.created_at).strftime("%Y-%m-%d")
    return _("Import %(id)d, %(when)s (%(file)s)") % {"id": batch.pk, "when": when, "file": batch.filename}


def whereabouts(deviation: Deviation) -> str:
    from lagesbild.places.models import Place
    from lagesbild.places.services import describe_position

    return describe_position(list(Place.objects.filter(forum_id=deviation.forum_id)), deviation.lon, deviation.lat)


def places_of(deviation: Deviation) -> list[Any]:
    from lagesbild.places.models import Place
    from lagesbild.places.services import places_containing, places_meeting

    if deviation.shape:  # a line or area is at every place it meets
        min_lon, min_lat, max_lon, max_lat = (deviation.shape_min_lon, deviation.shape_min_lat,
                                              deviation.shape_max_lon, deviation.shape_max_lat)
        candidates = list(Place.objects.filter(forum_id=deviation.forum_id, min_lon__lte=max_lon,
                                               max_lon__gte=min_lon, min_lat__lte=max_lat, max_lat__gte=min_lat))
        return places_meeting(candidates, deviation.shape)
    candidates = list(Place.objects.filter(forum_id=deviation.forum_id, min_lon__lte=deviation.lon,
                                           max_lon__gte=deviation.lon, min_lat__lte=deviation.lat,
                                           max_lat__gte=deviation.lat))
    return places_containing(candidates, deviation.lon, deviation.lat)

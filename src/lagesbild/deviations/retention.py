"""Retention: deviations older than the forum keeps them are anonymised or deleted (DESIGN.md §7).

Run it daily from cron or a systemd timer: `lagesbild retention`. Anonymising keeps what the statistics
need (category, position, time, organisation, status) and removes what could describe a person: the
description, the place name, the reporter, photos and comments. The free text of those deviations is also
removed from the audit log's records of them; that is the one change ever made to the log, and it is
itself logged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from lagesbild.audit.models import AuditEvent
from lagesbild.deviations import photos as photo_files
from lagesbild.deviations.models import Comment, Deviation, Photo
from lagesbild.forums.models import Forum

FREE_TEXT = ("description", "place_name")  # the audited fields that can describe a person
REMOVED = "[borttaget]"


def months_before(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day and time `months` calendar months earlier (the month's last day if it is shorter)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    for day in range(moment.day, 0, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise ValueError("no such date")  # pragma: no cover - day 1 always exists


@dataclass
class RetentionResult:
    forum: Forum
    cutoff: dt.datetime
    action: str
    deviations: int
    photos: int
    comments: int
    walks: int = 0


def expired(forum: Forum, now: dt.datetime | None = None) -> tuple[QuerySet[Deviation], dt.datetime] | None:
    if not forum.retention_months:
        return None
    cutoff = months_before(now or timezone.now(), forum.retention_months)
    queryset = Deviation.objects.filter(forum=forum, observed_at__lt=cutoff)
    if forum.retention_action == Forum.Retention.ANONYMISE:
        queryset = queryset.filter(anonymised_at__isnull=True)
    return queryset, cutoff


def apply_retention(forum: Forum, *, dry_run: bool = False, now: dt.datetime | None = None
                    ) -> RetentionResult | None:
    """Anonymise or delete the forum's expired deviations, and its safety walks from before the same cutoff
    (walks/retention.py: a walk's notes and participants describe what its deviations do). Returns what it
    did (or would do)."""
    from lagesbild.walks.retention import apply_walk_retention, expired_walks  # the walks app builds on this one

    found = expired(forum, now)
    if found is None:
        return None
    queryset, cutoff = found
    ids = list(queryset.values_list("pk", flat=True))
    photos = list(Photo.objects.filter(deviation_id__in=ids))
    comments = Comment.objects.filter(deviation_id__in=ids).count()
    result = RetentionResult(forum, cutoff, forum.retention_action, len(ids), len(photos), comments,
                             expired_walks(forum, cutoff).count())
    if dry_run:
        return result
    if not ids:
        if result.walks:
            with transaction.atomic():
                apply_walk_retention(forum, cutoff)
                AuditEvent.objects.create(
                    forum=forum, action=AuditEvent.Action.RETENTION, object_type="forum", object_id=forum.pk,
                    changes={"action": forum.retention_action, "cutoff": cutoff.isoformat(), "deviations": 0,
                             "photos": 0, "comments": 0, "walks": result.walks})
        return result
    files = [path for photo in photos for path in (photo.image, photo.thumbnail)]
    with transaction.atomic():
        apply_walk_retention(forum, cutoff)
        Photo.objects.filter(deviation_id__in=ids).delete()
        Comment.objects.filter(deviation_id__in=ids).delete()
        if forum.retention_action == Forum.Retention.DELETE:
            Deviation.objects.filter(pk__in=ids).delete()
        else:
            Deviation.objects.filter(pk__in=ids).update(
                description="", place_name="", search_text="", reporter=None, anonymised_at=timezone.now())
        _scrub_audit_log(ids)
        AuditEvent.objects.create(
            forum=forum, action=AuditEvent.Action.RETENTION, object_type="forum", object_id=forum.pk,
            changes={"action": forum.retention_action, "cutoff": cutoff.isoformat(), "deviations": len(ids),
                     "photos": len(photos), "comments": comments, "walks": result.walks})
        # Files go only once the database agrees; a failure above leaves them in place with their rows.
        transaction.on_commit(lambda: photo_files.delete_files(files))
    return result


def _scrub_audit_log(deviation_ids: list[int]) -> None:
    events = AuditEvent.objects.filter(object_type="deviation", object_id__in=deviation_ids)
    for event in events.only("pk", "changes"):
        changes = dict(event.changes)
        for key in FREE_TEXT:
            if key in changes:
                value = changes[key]
                changes[key] = [REMOVED, REMOVED] if isinstance(value, list) else REMOVED
        if changes != event.changes:
            # QuerySet.update, not save(): events are otherwise never changed (see AuditEvent.save).
            AuditEvent.objects.filter(pk=event.pk).update(changes=changes)


def remove_orphan_photos(older_than: dt.timedelta = dt.timedelta(hours=1)) -> int:
    """Photo files that no photo row names: left behind when a process died between writing a report's files
    and committing the report (kill -9, a power cut). Only files older than `older_than`, so that reports being
    written now keep theirs. Returns how many files went."""
    from django.conf import settings

    root = Path(settings.MEDIA_ROOT)
    cutoff = (timezone.now() - older_than).timestamp()
    removed = 0
    for folder in sorted((root / "photos").glob("*")):
        if not folder.is_dir() or not folder.name.isdigit():
            continue
        named: set[str] = set()
        for image, thumbnail in Photo.objects.filter(forum_id=int(folder.name)).values_list("image", "thumbnail"):
            named.update((image, thumbnail))
        for path in folder.iterdir():
            name = path.relative_to(root).as_posix()
            if path.is_file() and name not in named and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed

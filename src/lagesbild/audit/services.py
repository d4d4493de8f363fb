from __future__ import annotations

from typing import Any

from django.db.models import Model

from lagesbild.audit.models import AuditEvent
from lagesbild.forums.models import Membership


def record(membership: Membership, action: str, obj: Model, changes: dict[str, Any] | None = None) -> AuditEvent:
    """Write one audit event for an action a member took in their forum."""
    return AuditEvent.objects.create(
        forum_id=membership.forum_id,
        actor_id=membership.user_id,
        organisation_id=membership.organisation_id,
        action=action,
        object_type=obj._meta.model_name or "",
        object_id=obj.pk,
        changes=changes or {},
    )

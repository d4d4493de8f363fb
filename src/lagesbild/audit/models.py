"""The audit log (händelselogg): who did what, when, to which object. Append-only."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Changed")
        WITHDRAW = "withdraw", _("Withdrawn")
        COMMENT = "comment", _("Commented")
        PHOTO = "photo", _("Photo added")
        VISIBILITY = "visibility", _("Visibility changed")
        READ = "read", _("Restricted deviation read")
        SIGN_IN = "sign_in", _("Signed in")
        SIGN_IN_FAILED = "sign_in_failed", _("Failed sign-in")
        SIGN_OUT = "sign_out", _("Signed out")
        EXPORT = "export", _("Exported")
        IMPORT = "import", _("Imported")
        IMPORT_UNDONE = "import_undone", _("Import undone")
        RETENTION = "retention", _("Retention applied")
        INVITE = "invite", _("Invited")
        JOIN = "join", _("Joined by invitation")
        ROLE = "role", _("Role changed")
        SUSPEND = "suspend", _("Membership suspended")
        REACTIVATE = "reactivate", _("Membership reactivated")
        REMOVE = "remove", _("Membership removed")
        SETTINGS = "settings", _("Forum settings changed")
        DELETE = "delete", _("Deleted")
        FOLLOW_UP = "follow_up", _("Followed up")
        PUBLISH = "publish", _("Protocol published")
        REFUSED = "refused", _("Refused attempt")

    forum = models.ForeignKey("forums.Forum", on_delete=models.CASCADE, null=True, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    organisation = models.ForeignKey("forums.Organisation", on_delete=models.SET_NULL, null=True, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    object_type = models.CharField(max_length=40)
    object_id = models.BigIntegerField(null=True)
    # {"field": [old, new], ...} for changes; the new values for a creation.
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["at", "pk"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
            models.Index(fields=["forum", "at"], name="audit_forum_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_type} #{self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Append-only: an event, once written, is never changed through the application.
        if self.pk is not None:
            raise ValueError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("Audit events cannot be deleted.")

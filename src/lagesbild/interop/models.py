"""Imports: one batch per uploaded file, and what a forum's coordinators taught the import to recognise."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lagesbild.forums.models import Forum, Organisation


class ImportBatch(models.Model):
    """One uploaded file on its way in: mapped, checked (the dry run), imported, and perhaps undone.

    Every deviation it brings in points back to it, so the whole batch can be undone at once.
    """

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Waiting for the column mapping")
        CHECKING = "checking", _("Being checked")
        CHECKED = "checked", _("Checked")
        IMPORTING = "importing", _("Being imported")
        IMPORTED = "imported", _("Imported")
        FAILED = "failed", _("Failed")
        UNDONE = "undone", _("Undone")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    filename = models.CharField(max_length=200)
    format = models.CharField(max_length=10)  # csv, xlsx, geojson, gpkg
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    path = models.CharField(max_length=300, blank=True)  # under MEDIA_ROOT, until imported or abandoned
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADED)
    # What the file holds (headers, samples, the coordinate system it declares) and how it is to be read.
    layout = models.JSONField(default=dict)
    mapping = models.JSONField(default=dict)
    row_count = models.PositiveIntegerField(default=0)
    ok_count = models.PositiveIntegerField(default=0)
    problem_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    problems = models.JSONField(default=list)  # the first problems found, each {row, column, value, message}
    imported_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    imported_at = models.DateTimeField(null=True, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["forum", "organisation", "sha256"], name="import_batch_file")]

    def __str__(self) -> str:
        return f"{self.forum} #{self.pk} {self.filename}"


class ImportMemory(models.Model):
    """A column name or a category name from a file, and what an organisation's members mapped it to by hand,
    so that the organisation's next file from the same spreadsheet is mapped already. Kept per organisation:
    the names come from its own files, which other organisations do not see."""

    class Kind(models.TextChoices):
        COLUMN = "column", _("Column")
        CATEGORY = "category", _("Category")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    source = models.CharField(max_length=200)  # normalised: lower case, single spaces
    target = models.CharField(max_length=80)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "kind", "source"],
                                               name="import_memory_unique")]

    def __str__(self) -> str:
        return f"{self.forum}: {self.kind} {self.source} → {self.target}"

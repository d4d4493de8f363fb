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


class FaultSystem(models.Model):
    """An owner's fault-report system (felanmälan) that speaks Open311, and which categories go to it.

    Set up by the operator (the admin, under *drift*): its address, the key it gave us, and for each category
    that is a physical defect the owner mends, the owner's service code.
    """

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="fault_systems")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+",
                                     help_text=_("The organisation whose system it is"))
    name = models.CharField(_("name"), max_length=120)
    endpoint = models.URLField(_("Open311 address"), help_text=_("The GeoReport v2 base address, e.g. "
                                                                "https://felanmalan.example.se/open311/v2/"))
    api_key = models.CharField(_("API key"), max_length=200, blank=True)
    jurisdiction = models.CharField(_("jurisdiction id"), max_length=100, blank=True)
    # Category key -> the system's service code, e.g. {"broken_lighting": "gatubelysning"}.
    services = models.JSONField(_("services per category"), default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["forum", "name"], name="fault_system_unique_name")]

    def __str__(self) -> str:
        return self.name


class HandOff(models.Model):
    """A deviation passed to a fault system: the id it got there, and its status there as last polled."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the system's id")
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    deviation = models.OneToOneField("deviations.Deviation", on_delete=models.CASCADE, related_name="hand_off")
    system = models.ForeignKey(FaultSystem, on_delete=models.PROTECT, related_name="hand_offs")
    service_code = models.CharField(max_length=100)
    external_id = models.CharField(_("id in the fault system"), max_length=100, blank=True)
    token = models.CharField(max_length=100, blank=True)  # some systems answer a token first, the id later
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    status_notes = models.CharField(_("status in the fault system"), max_length=300, blank=True)
    notice = models.CharField(max_length=300, blank=True)
    handed_off_at = models.DateTimeField(default=timezone.now)
    handed_off_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                      related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    updated_there_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    check_error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.system}: {self.external_id or self.token}"

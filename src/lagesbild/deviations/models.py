"""Deviations (avvikelser), their categories, photos, comments and who may see them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from lagesbild.forums.models import Forum, Organisation


class Category(models.Model):
    """A category in two levels. Rows with no forum are the default taxonomy shared by every forum."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, null=True, blank=True, related_name="categories")
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    key = models.SlugField(_("key"), max_length=60)
    name_sv = models.CharField(_("name (Swedish)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80)
    color = models.CharField(_("colour"), max_length=7, default="#555555")
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["sort_order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["forum", "key"], name="category_unique_key_per_forum"),
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(forum__isnull=True), name="category_unique_default_key"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The name in the active language: Swedish first, English when the person chose English."""
        lang = (translation.get_language() or "sv")[:2]
        return self.name_en if lang == "en" and self.name_en else self.name_sv


class CategoryField(models.Model):
    """A field of the forum's own on the reports of one category (and its subcategories): the number of
    people, whether the police were called, the colour of a tag."""

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        YES_NO = "yes_no", _("Yes or no")
        CHOICE = "choice", _("Choice from a list")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    # The field's name in the API, filters and exports; one per forum, so that a column means one thing.
    key = models.SlugField(_("key"), max_length=40)
    label = models.CharField(_("label"), max_length=80)
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    required = models.BooleanField(_("required"), default=False)
    position = models.PositiveSmallIntegerField(default=0)
    # Removed fields stay as tombstones: their values stay on the deviations, and a new field must never take
    # their key (and with it, the old values).
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("field")
        verbose_name_plural = _("fields")
        ordering = ["position", "pk"]
        constraints = [models.UniqueConstraint(fields=["forum", "key"], name="category_field_unique_key")]

    def __str__(self) -> str:
        return self.label


class HiddenCategory(models.Model):
    """A category the forum no longer offers when reporting. Deviations already in it keep it."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="hidden_categories")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["forum", "category"], name="hidden_category_unique")]

    def __str__(self) -> str:
        return f"{self.forum}: {self.category}"


class Deviation(models.Model):
    """Something a member organisation noticed at a place and time."""

    class Status(models.TextChoices):
        NEW = "new", _("New")
        REVIEWED = "reviewed", _("Reviewed")
        IN_PROGRESS = "in_progress", _("Action under way")
        RESOLVED = "resolved", _("Resolved")
        DISMISSED = "dismissed", _("Dismissed")

    class Severity(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")

    class Visibility(models.TextChoices):
        FORUM = "forum", _("The whole forum")
        ORGANISATION = "organisation", _("Our organisation only")
        NAMED = "named", _("Named organisations")

    class Source(models.TextChoices):
        MANUAL = "manual", _("Reported manually")
        WALK = "walk", _("Safety walk")
        IMPORT = "import", _("Import")
        TIP = "tip", _("Public tip")

    # No index of its own: the (forum, …) indexes below serve every lookup by forum, and each index costs
    # every write (an import of a million rows pays for each one).
    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="deviations", db_index=False)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="deviations")
    # WGS84 longitude and latitude; SWEREF 99 TM (EPSG:3006) is derived on save for analysis and export.
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    sweref_x = models.FloatField(_("SWEREF 99 TM easting"))
    sweref_y = models.FloatField(_("SWEREF 99 TM northing"))
    # For analysis (see derived.py): the H3 hexagons it lies in, and when it happened in the forum's local time.
    h3_8 = models.BigIntegerField(null=True, editable=False)
    h3_9 = models.BigIntegerField(null=True, editable=False)
    h3_10 = models.BigIntegerField(null=True, editable=False)
    local_weekday = models.PositiveSmallIntegerField(null=True, editable=False)  # Monday is 0
    local_hour = models.PositiveSmallIntegerField(null=True, editable=False)
    local_month = models.PositiveIntegerField(null=True, editable=False)  # 202603 for March 2026
    # A line or an area (GeoJSON LineString or Polygon), drawn instead of a point; NULL for a point. lon and lat
    # are then its anchor, and the extent below is what the spatial index holds (see shapes.py).
    shape = models.JSONField(_("line or area"), null=True, blank=True)
    shape_min_lon = models.FloatField(null=True, editable=False)
    shape_min_lat = models.FloatField(null=True, editable=False)
    shape_max_lon = models.FloatField(null=True, editable=False)
    shape_max_lat = models.FloatField(null=True, editable=False)
    place_name = models.CharField(_("place or address"), max_length=200, blank=True)
    observed_at = models.DateTimeField(_("observed"))
    observed_until = models.DateTimeField(_("observed until"), null=True, blank=True)
    reported_at = models.DateTimeField(_("reported"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="deviations")
    # Who reported it, which import brought it, who flagged it for the police: references kept by Django
    # (on_delete below) without a constraint in the database. Each such constraint is a lookup per written row,
    # and for an import of a million rows these four cost 14 of its 57 seconds (bench/bench_import.py).
    # Nothing ever deletes a user, batch or organisation behind Django's back; forum, category and
    # organisation, which the visibility gate reads, keep their constraints.
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="deviations",
        db_constraint=False,
    )
    description = models.TextField(_("description"), blank=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    visibility = models.CharField(
        _("visibility"), max_length=20, choices=Visibility.choices, default=Visibility.FORUM
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.NEW)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.MANUAL)
    # The file an imported deviation came in with, so that the whole import can be undone.
    import_batch = models.ForeignKey("interop.ImportBatch", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="deviations", editable=False, db_constraint=False)
    # "To report to the police": who flagged it and when, and the police report's reference once one is made.
    police_flagged_at = models.DateTimeField(_("flagged for a police report"), null=True, blank=True)
    # Indexed only where set (see Meta): almost every deviation has neither.
    police_flagged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                          blank=True, related_name="+", db_index=False, db_constraint=False)
    police_flagged_org = models.ForeignKey(Organisation, on_delete=models.SET_NULL, null=True, blank=True,
                                           related_name="+", db_index=False, db_constraint=False)
    police_report_reference = models.CharField(_("police report reference"), max_length=40, blank=True)
    police_reported_at = models.DateTimeField(_("police report recorded"), null=True, blank=True)
    # The key a phone gives a capture (the Idempotency-Key header), so that sending it again, after a lost
    # answer or from the offline queue, finds the deviation instead of making a second one.
    capture_key = models.CharField(max_length=64, null=True, blank=True, editable=False)  # noqa: DJ001 (NULL: no key)
    # The forum's own fields (CategoryField), by key; NULL when there are none.
    fields = models.JSONField(_("fields"), null=True, blank=True)
    # The round it was reported on, if any (provenance, kept by Django like the import's).
    round = models.ForeignKey("Round", on_delete=models.SET_NULL, null=True, blank=True, related_name="deviations",
                              editable=False, db_constraint=False, db_index=False)
    # Optimistic concurrency: an edit names the version it started from; a stale one is refused.
    version = models.PositiveIntegerField(default=1)
    # Lower-cased place name and description: case-insensitive search that also folds å, ä and ö,
    # which SQLite's LIKE does not.
    search_text = models.TextField(blank=True, default="", editable=False)
    # Set when retention removed the free text, photos and comments; the rest stays for statistics.
    anonymised_at = models.DateTimeField(null=True, blank=True)
    # A withdrawn deviation is kept for the change history but shown nowhere.
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("deviation")
        verbose_name_plural = _("deviations")
        indexes = [
            # On SQLite this index also holds the position (spatial_index.ensure_spatial_index says why).
            models.Index(fields=["forum", "observed_at"], name="deviation_forum_observed"),
            models.Index(fields=["forum", "status"], name="deviation_forum_status"),
            # What the forum-wide counts leave out, and each reader's figures add live: their organisation's few
            # restricted ones (with the organisation first: most of an organisation's reports are forum-wide).
            # What they are counted by is in the index (PostgreSQL), so counting them reads only the index.
            models.Index(fields=["forum", "organisation", "visibility", "observed_at"],
                         include=["withdrawn_at", "h3_8", "category"], name="deviation_restricted"),
            models.Index(fields=["police_flagged_by"], name="deviation_flagged_by",
                         condition=models.Q(police_flagged_by__isnull=False)),
            models.Index(fields=["police_flagged_org"], name="deviation_flagged_org",
                         condition=models.Q(police_flagged_org__isnull=False)),
            models.Index(fields=["round"], name="deviation_round", condition=models.Q(round__isnull=False)),
            # Lines and areas, few among the points: a hexagon tile read from the counts (which hold each
            # deviation once, at its anchor) finds them here to count them in every hexagon they cross.
            models.Index(fields=["forum", "observed_at"], name="deviation_drawn",
                         condition=models.Q(shape_min_lon__isnull=False)),
        ]
        constraints = [
            # Only reports from the app carry a key; imported rows (NULL) cost the index nothing.
            models.UniqueConstraint(fields=["forum", "reporter", "capture_key"], name="deviation_capture_once",
                                    condition=models.Q(capture_key__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.category} {self.observed_at:%Y-%m-%d}"


class DeviationCell(models.Model):
    """An H3 hexagon that a line or area lies in, at one of the kept resolutions: hexagon maps count the shape in
    each of them. A point needs none (its h3_* columns say where it is)."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+", db_index=False)
    deviation = models.ForeignKey(Deviation, on_delete=models.CASCADE, related_name="cells", db_index=False)
    resolution = models.PositiveSmallIntegerField()
    cell = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deviation", "resolution", "cell"],
                                               name="deviation_cell_unique")]
        indexes = [models.Index(fields=["forum", "resolution", "cell"], name="deviation_cell_forum")]

    def __str__(self) -> str:
        return f"#{self.deviation_id} {self.resolution}:{self.cell}"


class DeviationCount(models.Model):
    """How many deviations the whole forum may see lie in one H3 hexagon (at its anchor), in one category, on one
    day or in one month (UTC): kept by database triggers (deviations.counts), so that a city's map over any
    period reads a few thousand of these rather than a million deviations.

    Each deviation counts in its category and in "all categories" (category 0), at resolutions 8, 9 and 10; and,
    per category, in the forum as a whole (resolution 0, cell 0), for the legend of a view of the whole forum.
    """

    class Span(models.IntegerChoices):
        DAY = 1  # `period` is days since 1970-01-01
        MONTH = 2  # `period` is year * 12 + month - 1

    ALL_CATEGORIES = 0
    WHOLE_FORUM = 0  # the resolution (and cell and area) of the forum-wide rows

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+", db_index=False)
    resolution = models.PositiveSmallIntegerField()
    span = models.PositiveSmallIntegerField(choices=Span.choices)
    period = models.IntegerField()
    # The resolution-6 hexagon (about 36 km²) the cell lies in: a district's view reads only its own few.
    area = models.BigIntegerField()
    cell = models.BigIntegerField()
    category = models.IntegerField()  # a category's id, or ALL_CATEGORIES (no foreign key: 0 is no category)
    count = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["forum", "resolution", "span", "period", "cell", "category"],
                                               name="deviation_count_key")]
        indexes = [
            models.Index(fields=["forum", "resolution", "span", "area", "period"], name="deviation_count_area"),
            # With the area, cell and count in the index (PostgreSQL), a city's tile reads only the index (an
            # index-only scan of some 24,000 entries, 4.6 ms at 1 M deviations, against 13.6 ms through the table).
            models.Index(fields=["forum", "resolution", "span", "category", "period"],
                         include=["area", "cell", "count"], name="deviation_count_category"),
        ]

    def __str__(self) -> str:
        return f"{self.resolution}:{self.cell} {self.span}/{self.period} #{self.category}: {self.count}"


class Round(models.Model):
    """A member's round: a security host's evening, a weekend night's walk. The deviations they report between
    starting and ending it belong to it. The phone starts and ends it, with or without network, under a key it
    makes, so that sending the start again (a retry, the offline queue) is the same round."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    name = models.CharField(_("name"), max_length=80)
    started_at = models.DateTimeField(_("started"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)

    class Meta:
        verbose_name = _("round")
        verbose_name_plural = _("rounds")
        ordering = ["-started_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["forum", "started_by", "key"], name="round_key_once")]

    def __str__(self) -> str:
        return self.name


class DeviationShare(models.Model):
    """An organisation named in a deviation's visibility list ("named organisations")."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    deviation = models.ForeignKey(Deviation, on_delete=models.CASCADE, related_name="shares")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deviation", "organisation"], name="deviation_share_unique")
        ]
        indexes = [models.Index(fields=["organisation", "deviation"], name="deviation_share_org")]

    def __str__(self) -> str:
        return f"#{self.deviation_id} → {self.organisation_id}"


class Photo(models.Model):
    """A photo, re-encoded without metadata, with a thumbnail. Served only through a visibility check."""

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    deviation = models.ForeignKey(Deviation, on_delete=models.CASCADE, related_name="photos")
    image = models.CharField(max_length=200)  # path under MEDIA_ROOT
    thumbnail = models.CharField(max_length=200)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("photo")
        verbose_name_plural = _("photos")
        ordering = ["uploaded_at", "pk"]

    def __str__(self) -> str:
        return self.image


class Comment(models.Model):
    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="+")
    deviation = models.ForeignKey(Deviation, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(_("comment"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("comment")
        verbose_name_plural = _("comments")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.body[:60]

"""Places (platser): named points-with-radius or areas where problems recur.

A deviation belongs to a place by geometry alone, so drawing a place also gathers its history.
"""

from __future__ import annotations

import json
from functools import cached_property

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lagesbild.forums.models import Forum


class Place(models.Model):
    class Shape(models.TextChoices):
        CIRCLE = "circle", _("Point with radius")
        POLYGON = "polygon", _("Area drawn on the map")

    forum = models.ForeignKey(Forum, on_delete=models.CASCADE, related_name="places")
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    shape = models.CharField(_("shape"), max_length=10, choices=Shape.choices, default=Shape.CIRCLE)
    # The centre (for an area, a point inside it), in WGS84 and SWEREF 99 TM.
    lon = models.FloatField(_("longitude"))
    lat = models.FloatField(_("latitude"))
    sweref_x = models.FloatField()
    sweref_y = models.FloatField()
    radius_m = models.PositiveIntegerField(_("radius (metres)"), null=True, blank=True)
    area = models.JSONField(_("area"), null=True, blank=True)  # GeoJSON Polygon, for Shape.POLYGON
    # The bounding box, so finding a place's deviations starts from the spatial index.
    min_lon = models.FloatField()
    min_lat = models.FloatField()
    max_lon = models.FloatField()
    max_lat = models.FloatField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("place")
        verbose_name_plural = _("places")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["forum", "name"], name="place_unique_name")]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def area_json(self) -> str:
        """The polygon as the text spatial_index caches its edges under (worked out once per object)."""
        return json.dumps(self.area, sort_keys=True)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (self.min_lon, self.min_lat, self.max_lon, self.max_lat)

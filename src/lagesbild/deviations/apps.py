from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_spatial_index(using: str = "default", **kwargs: Any) -> None:
    from django.db import connections

    from lagesbild.spatial_index import ensure_spatial_index

    ensure_spatial_index(connections[using])


class DeviationsConfig(AppConfig):
    name = "lagesbild.deviations"
    label = "deviations"
    verbose_name = _("Deviations")

    def ready(self) -> None:
        post_migrate.connect(_ensure_spatial_index, sender=self)

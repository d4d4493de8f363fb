from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_triggers(using: str = "default", **kwargs: Any) -> None:
    from django.db import connections

    from lagesbild.data_version import ensure_triggers
    from lagesbild.deviations import counts
    from lagesbild.spatial_index import ensure_spatial_index, refresh_statistics

    ensure_spatial_index(connections[using])
    ensure_triggers(connections[using])
    counts.ensure_triggers(connections[using])
    refresh_statistics(connections[using])  # a migration may have added an index


class DeviationsConfig(AppConfig):
    name = "lagesbild.deviations"
    label = "deviations"
    verbose_name = _("Deviations")

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from lagesbild.spatial_index import register_sqlite_functions

        post_migrate.connect(_ensure_triggers, sender=self)
        connection_created.connect(register_sqlite_functions, dispatch_uid="lagesbild-sqlite-functions")

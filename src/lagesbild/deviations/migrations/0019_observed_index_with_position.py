"""The (forum, observed_at) index holds each deviation's position too (spatial_index.filter_bbox says why).

PostgreSQL builds the new index CONCURRENTLY beside the old one and then drops the old one, so reports and the
map go on while it builds (a plain rebuild would lock the table for as long as that takes: seconds at 1 M
deviations). That cannot run inside a transaction, so this migration runs without one. SQLite holds the
whole database while a migration runs anyway, and rebuilds it in place.
"""

from django.db import migrations, models

TABLE = "deviations_deviation"
NAME = "deviation_forum_observed"
WIDE = "forum_id, observed_at, lon, lat, shape_min_lon"
NARROW = "forum_id, observed_at"


def _rebuild(schema_editor, columns: str) -> None:
    execute = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}_new")  # left by an attempt that was stopped
        execute(f"CREATE INDEX CONCURRENTLY {NAME}_new ON {TABLE} ({columns})")
        execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}")
        execute(f"ALTER INDEX {NAME}_new RENAME TO {NAME}")
    else:
        execute(f"DROP INDEX IF EXISTS {NAME}")
        execute(f"CREATE INDEX {NAME} ON {TABLE} ({columns})")


def widen(apps, schema_editor) -> None:
    _rebuild(schema_editor, WIDE)


def narrow(apps, schema_editor) -> None:
    _rebuild(schema_editor, NARROW)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("deviations", "0018_drawn_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="deviation", name=NAME),
                migrations.AddIndex(
                    model_name="deviation",
                    index=models.Index(fields=["forum", "observed_at", "lon", "lat", "shape_min_lon"], name=NAME),
                ),
            ],
            database_operations=[migrations.RunPython(widen, narrow)],
        ),
    ]

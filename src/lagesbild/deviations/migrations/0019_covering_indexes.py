"""Two indexes become covering (INCLUDE), so that a city's hexagon tile reads its counts and the reader's
restricted deviations from the indexes alone on PostgreSQL (docs/architecture.md, "Pre-aggregated counts").

On PostgreSQL each new index is built beside the old one with CREATE INDEX CONCURRENTLY, and takes the old
one's name once that is dropped: the map and reports carry on while it is built (a plain DROP and CREATE
would lock both tables for the whole build). It waits, though, for transactions already open when it starts
(a running import or backup). SQLite swaps them at once; after the migrate,
spatial_index.ensure_spatial_index gives SQLite's the included columns at the end of their key."""

from typing import Any

from django.db import migrations, models

COVERING = [
    ("deviation", models.Index(fields=["forum", "organisation", "visibility", "observed_at"],
                               include=["withdrawn_at", "h3_8", "category"], name="deviation_restricted")),
    ("deviationcount", models.Index(fields=["forum", "resolution", "span", "category", "period"],
                                    include=["area", "cell", "count"], name="deviation_count_category")),
]
PLAIN = [(model, models.Index(fields=index.fields, name=index.name)) for model, index in COVERING]


def _swap(indexes: list[tuple[str, models.Index]]) -> Any:
    def swap(apps: Any, schema_editor: Any) -> None:
        for model_name, index in indexes:
            model = apps.get_model("deviations", model_name)
            if schema_editor.connection.vendor == "postgresql":
                built = models.Index(fields=index.fields, include=index.include, name=f"{index.name}_new")
                # A run interrupted while building leaves an invalid index behind, which is built again; one
                # interrupted after building keeps what it built.
                with schema_editor.connection.cursor() as cursor:
                    cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                                   [built.name])
                    found = cursor.fetchone()
                if found is None or not found[0]:
                    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {built.name}")
                    schema_editor.add_index(model, built, concurrently=True)
                schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")
                schema_editor.execute(f"ALTER INDEX {built.name} RENAME TO {index.name}")
            else:
                schema_editor.execute(f"DROP INDEX IF EXISTS {index.name}")
                schema_editor.add_index(model, index)
    return swap


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('deviations', '0018_drawn_index'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(_swap(COVERING), _swap(PLAIN))],
            state_operations=[
                *[migrations.RemoveIndex(model_name=model, name=index.name) for model, index in COVERING],
                *[migrations.AddIndex(model_name=model, index=index) for model, index in COVERING],
            ],
        ),
    ]

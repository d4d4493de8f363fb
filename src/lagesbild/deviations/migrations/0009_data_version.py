from django.db import migrations


def data_version(apps, schema_editor):
    from lagesbild.data_version import ensure_triggers

    ensure_triggers(schema_editor.connection)


def drop(apps, schema_editor):
    from lagesbild.data_version import TABLE

    with schema_editor.connection.cursor() as cursor:
        for event in ("insert", "update", "delete"):
            on = "" if schema_editor.connection.vendor == "sqlite" else " ON deviations_deviation"
            cursor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_{event}{on}")
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


class Migration(migrations.Migration):
    dependencies = [("deviations", "0008_deviation_police_flagged_at_and_more")]

    operations = [migrations.RunPython(data_version, drop)]

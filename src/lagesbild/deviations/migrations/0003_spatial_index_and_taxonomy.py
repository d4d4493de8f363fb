from django.db import migrations


def spatial_index(apps, schema_editor):
    from lagesbild.spatial_index import ensure_spatial_index

    ensure_spatial_index(schema_editor.connection)


def default_taxonomy(apps, schema_editor):
    from lagesbild.deviations.taxonomy import seed_default_taxonomy

    seed_default_taxonomy(apps.get_model("deviations", "Category"))


class Migration(migrations.Migration):
    dependencies = [("deviations", "0002_initial")]

    operations = [
        migrations.RunPython(spatial_index, migrations.RunPython.noop),
        migrations.RunPython(default_taxonomy, migrations.RunPython.noop),
    ]

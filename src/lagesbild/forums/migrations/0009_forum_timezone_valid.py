import zoneinfo

from django.db import migrations, models

import lagesbild.forums.models


def valid_time_zones(apps, schema_editor):
    """A forum saved with a time zone that does not exist (before names were checked) gets the default."""
    Forum = apps.get_model("forums", "Forum")
    known = zoneinfo.available_timezones()
    for forum in Forum.objects.all():
        if forum.timezone not in known:
            Forum.objects.filter(pk=forum.pk).update(timezone="Europe/Stockholm")


class Migration(migrations.Migration):
    dependencies = [("forums", "0008_forum_reminder_days")]

    operations = [
        migrations.AlterField(
            model_name="forum",
            name="timezone",
            field=models.CharField(default="Europe/Stockholm", max_length=60,
                                   validators=[lagesbild.forums.models.validate_time_zone],
                                   verbose_name="time zone"),
        ),
        migrations.RunPython(valid_time_zones, migrations.RunPython.noop),
    ]

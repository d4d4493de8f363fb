"""Meetings from before periods existed review the time since the meeting before them."""

import datetime as dt

from django.db import migrations, models


def fill_periods(apps, schema_editor):
    Meeting = apps.get_model("meetings", "Meeting")
    previous = {}
    for meeting in Meeting.objects.order_by("forum_id", "held_at"):
        start = previous.get(meeting.forum_id, meeting.held_at - dt.timedelta(days=30))
        Meeting.objects.filter(pk=meeting.pk).update(period_start=start, period_end=meeting.held_at)
        previous[meeting.forum_id] = meeting.held_at


class Migration(migrations.Migration):
    dependencies = [("meetings", "0002_action_actiondeviation_agendaitem_followup_and_more")]

    operations = [
        migrations.RunPython(fill_periods, migrations.RunPython.noop),
        migrations.AlterField("meeting", "period_start", models.DateTimeField(verbose_name="period from")),
        migrations.AlterField("meeting", "period_end", models.DateTimeField(verbose_name="period until")),
    ]

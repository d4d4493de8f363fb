"""A meeting's attending organisations and people get the forum's id, as everything a forum owns.

The tables stay as Django made them for the two many-to-many fields; they become through models (state only),
then get a `forum` column, filled from their meeting.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def fill_forum(apps, schema_editor):
    Meeting = apps.get_model("meetings", "Meeting")
    for name in ("AttendingOrganisation", "Attendee"):
        model = apps.get_model("meetings", name)
        for forum_id in Meeting.objects.values_list("forum_id", flat=True).distinct():
            model.objects.filter(meeting__forum_id=forum_id).update(forum_id=forum_id)


class Migration(migrations.Migration):

    dependencies = [
        ("forums", "0008_forum_reminder_days"),
        ("meetings", "0006_alter_agendaitem_kind"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AttendingOrganisation",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                verbose_name="ID")),
                        ("meeting", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                      related_name="+", to="meetings.meeting")),
                        ("organisation", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                           related_name="+", to="forums.organisation")),
                    ],
                    options={"db_table": "meetings_meeting_attending_organisations",
                             "unique_together": {("meeting", "organisation")}},
                ),
                migrations.CreateModel(
                    name="Attendee",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                verbose_name="ID")),
                        ("meeting", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                      related_name="+", to="meetings.meeting")),
                        ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                   related_name="+", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={"db_table": "meetings_meeting_attendees", "unique_together": {("meeting", "user")}},
                ),
                migrations.AlterField(
                    model_name="meeting",
                    name="attending_organisations",
                    field=models.ManyToManyField(blank=True, related_name="+", through="meetings.AttendingOrganisation",
                                                 to="forums.organisation"),
                ),
                migrations.AlterField(
                    model_name="meeting",
                    name="attendees",
                    field=models.ManyToManyField(blank=True, related_name="+", through="meetings.Attendee",
                                                 to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="attendingorganisation",
            name="forum",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                    to="forums.forum"),
        ),
        migrations.AddField(
            model_name="attendee",
            name="forum",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                    to="forums.forum"),
        ),
        migrations.RunPython(fill_forum, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="attendingorganisation",
            name="forum",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="forums.forum"),
        ),
        migrations.AlterField(
            model_name="attendee",
            name="forum",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="forums.forum"),
        ),
    ]

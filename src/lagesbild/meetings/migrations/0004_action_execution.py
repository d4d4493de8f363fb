from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("meetings", "0003_meeting_periods")]

    operations = [
        migrations.AddField(
            model_name="action",
            name="execution",
            field=models.CharField(blank=True, choices=[("fully", "Carried out in full"), ("partly", "Carried out in part"),
                                                        ("not_at_all", "Not carried out")],
                                   max_length=12, verbose_name="carried out"),
        ),
        migrations.AddField(
            model_name="action",
            name="execution_note",
            field=models.TextField(blank=True, verbose_name="how it was carried out"),
        ),
    ]

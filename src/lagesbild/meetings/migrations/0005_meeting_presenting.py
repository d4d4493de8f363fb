from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("meetings", "0004_action_execution")]

    operations = [
        migrations.AddField(model_name="meeting", name="presenting",
                            field=models.PositiveSmallIntegerField(blank=True, null=True)),
    ]

# State values as PostgreSQL json rather than jsonb (models.JSONText, docs/decisions/0008): the ALTER keeps
# every value (jsonb to json is an assignment cast); on SQLite the columns stay text.

import objects.models
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("objects", "0007_claim_blocker_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="statechange",
            name="new_value",
            field=objects.models.JSONText(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="statechange",
            name="old_value",
            field=objects.models.JSONText(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="stateentry",
            name="value",
            field=objects.models.JSONText(null=True),
        ),
    ]

# State values compressed with lz4 rather than pglz on PostgreSQL (docs/decisions/0009), where the server was built
# with lz4 (PostgreSQL 14 and later; most packages are). Values keep the compression they were written with until
# they are written again. Nothing to do on SQLite or on a server without lz4.

from django.db import migrations

COLUMNS = [("objects_stateentry", "value"), ("objects_statechange", "old_value"), ("objects_statechange", "new_value")]


def _has_lz4(schema_editor) -> bool:
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
    return bool(row and row[0])


def _set(schema_editor, method: str) -> None:
    if not _has_lz4(schema_editor):
        return
    quote = schema_editor.quote_name
    for table, column in COLUMNS:
        schema_editor.execute(f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} SET COMPRESSION {method}")


def compress_with_lz4(apps, schema_editor) -> None:
    _set(schema_editor, "lz4")


def compress_as_configured(apps, schema_editor) -> None:
    _set(schema_editor, "DEFAULT")


class Migration(migrations.Migration):
    dependencies = [
        ("objects", "0008_state_values_as_json"),
    ]

    operations = [
        migrations.RunPython(compress_with_lz4, compress_as_configured, elidable=False),
    ]

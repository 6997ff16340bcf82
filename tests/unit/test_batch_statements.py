"""The opening of a worker's pass (objects/store/batch.py) writes its arguments into the message as literals:
only the worker's own numbers, flags and times, each typed as psycopg would send it; anything else is refused."""

from __future__ import annotations

import datetime

import pytest

from objects.store.batch import _literal, _numbered


def test_placeholders_become_numbered_parameters_or_literals():
    sql = "SELECT 1 WHERE a IN (%s, %s) AND b LIKE 'x%%' LIMIT %s"
    assert _numbered(sql) == "SELECT 1 WHERE a IN ($1, $2) AND b LIKE 'x%' LIMIT $3"
    assert _numbered(sql, ["5", "6", "16"]) == "SELECT 1 WHERE a IN (5, 6) AND b LIKE 'x%' LIMIT 16"


def test_literals_of_numbers_flags_and_times():
    aware = datetime.datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=datetime.UTC)
    assert [_literal(7), _literal(False), _literal(True)] == ["7", "false", "true"]
    assert _literal(aware) == "'2026-12-07T01:02:03.456789+00:00'::timestamptz"
    assert _literal(aware.replace(tzinfo=None)) == "'2026-12-07T01:02:03.456789'::timestamp"


@pytest.mark.parametrize("value", ["O'Reilly", b"x", 1.5, None])
def test_anything_else_is_refused(value):
    with pytest.raises(TypeError, match="no literal"):
        _literal(value)

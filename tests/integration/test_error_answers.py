"""One error policy on every ingress path, over real HTTP: a connection-level failure of the database is the
ingress's 503, a query bug is a 500 (logged with its traceback), on the event loop (a token call or send,
objects/asgi.py) and on the threads (Django's ingress view: here a send with an idempotency key).

A trigger on the invocation table makes PostgreSQL refuse the insert of chosen keys with a chosen SQLSTATE:
42P01 (undefined table: psycopg's ProgrammingError, a query bug) or 53300 (too many connections: psycopg's
OperationalError, a connection-level failure). Real statements, real errors, nothing mocked.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from django.contrib.auth.models import User
from django.db import connection
from rest_framework.authtoken.models import Token

from objects.models import Invocation

pytestmark = pytest.mark.workers

TRIGGER = """
CREATE OR REPLACE FUNCTION objects_test_refuse() RETURNS trigger AS $$
BEGIN
    IF NEW.key LIKE 'querybug%' THEN
        RAISE EXCEPTION 'relation "objects_nosuchtable" does not exist' USING ERRCODE = '42P01';
    END IF;
    IF NEW.key LIKE 'outage%' THEN
        RAISE EXCEPTION 'sorry, too many clients already' USING ERRCODE = '53300';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER objects_test_refuse BEFORE INSERT ON objects_invocation
    FOR EACH ROW EXECUTE FUNCTION objects_test_refuse();
"""


@pytest.fixture
def refusing(live_web):
    with connection.cursor() as cursor:
        cursor.execute(TRIGGER)
    yield live_web
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS objects_test_refuse ON objects_invocation")
        cursor.execute("DROP FUNCTION IF EXISTS objects_test_refuse()")


@pytest.fixture
def headers(refusing):
    user = User.objects.create_user("errors")
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    # the first request of a token is answered by the threads (it caches the token): later ones by the loop
    warm = requests.post(f"{refusing.url}/ingress/Recorder/warm/append/send", json={"value": 0}, headers=headers)
    assert warm.status_code == 202, warm.text
    return headers


def send(server, key: str, headers: dict[str, str], *, threads: bool) -> requests.Response:
    extra = {"Idempotency-Key": uuid.uuid4().hex} if threads else {}  # an idempotency key: the threads answer
    return requests.post(
        f"{server.url}/ingress/Recorder/{key}/append/send", json={"value": 1}, headers={**headers, **extra}, timeout=30
    )


@pytest.mark.parametrize("threads", [False, True], ids=["loop", "threads"])
def test_a_query_bug_is_a_500_not_an_outage(refusing, headers, threads):
    response = send(refusing, "querybug", headers, threads=threads)
    assert response.status_code == 500, response.text
    body = response.json()
    assert body["code"] == 500 and body["source"] == "ingress"
    assert "unavailable" not in body["message"]
    assert not Invocation.objects.filter(key="querybug").exists()


@pytest.mark.parametrize("threads", [False, True], ids=["loop", "threads"])
def test_a_connection_level_failure_is_a_503(refusing, headers, threads):
    response = send(refusing, "outage", headers, threads=threads)
    assert response.status_code == 503, response.text
    assert response.json() == {
        "code": 503,
        "message": "The database is unavailable; retry shortly.",
        "source": "ingress",
    }
    assert not Invocation.objects.filter(key="outage").exists()

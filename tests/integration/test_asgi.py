"""objects/asgi.py: token calls and sends answered on the event loop, the same answers as Django's ingress
on the threads, and every request the loop cannot finish alone given to the threads with nothing written.

The application runs in process (httpx's ASGI transport) on the test database; the threads' side is
spied on, so each test knows which side answered.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import httpx
import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django.test import Client
from rest_framework.authtoken.models import Token

from objects import ObjectContext, SharedObjectContext, VirtualObject
from objects.asgi import Application
from objects.models import Instance, Invocation, StateEntry, Status
from objects.registry import unregister

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 4

COMPARED = (
    "Content-Type",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "WWW-Authenticate",
    "x-restate-error-source",
    "Allow",
)


class Spy:
    """The threads' side of the application, counting the requests it answers."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.count = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.count += 1
        await self.inner(scope, receive, send)


@pytest.fixture(autouse=True)
def no_drains(request, monkeypatch, redis_client):
    """Outside the worker test, no drain is published: the session's workers would otherwise run these
    tests' invocations while the test database is emptied after the test (a deadlock with its TRUNCATE).
    Drains already running are waited for before and after; the rings' counters are deleted after."""
    from objects.signals import doorbell
    from tests.support import settle

    settle(redis_client)
    stubbed = request.node.get_closest_marker("workers") is None
    if stubbed:
        monkeypatch.setattr(doorbell, "send_task", lambda *args, **options: None)
        monkeypatch.setattr(doorbell, "hint_published", lambda partition: None)
    yield
    if stubbed:  # the rings' counters, which no drain will release
        redis_client.delete(*[key for p in range(8) for key in doorbell.bell_keys(p)])
    settle(redis_client)


@pytest.fixture
def app():
    """The application on one event loop for the test (as under uvicorn: one loop per process)."""
    application = Application(get_wsgi_application(), threads=THREADS)
    executor = application.threaded.executor
    application.threaded = Spy(application.threaded)
    application.loop = asyncio.new_event_loop()
    yield application
    application.loop.run_until_complete(application.close())
    application.loop.close()
    barrier = threading.Barrier(THREADS)  # one task per thread: each closes its thread's Django connections

    def close() -> None:
        connections.close_all()
        barrier.wait(timeout=10)

    for future in [executor.submit(close) for _ in range(THREADS)]:
        future.result()
    executor.shutdown(wait=True)


@pytest.fixture
def token():
    user = User.objects.create_user("loop", password="pw")
    return Token.objects.create(user=user).key


@pytest.fixture
def db_rule():
    """A type whose access rule reads the database (a rule may; on the loop Django refuses it)."""
    obj = VirtualObject("LoopDbRule", access=lambda user, key, handler: User.objects.filter(pk=user.pk).exists())

    @obj.exclusive
    def note(ctx: ObjectContext, arg: Any) -> int:
        return 1

    yield obj
    unregister("LoopDbRule")


@pytest.fixture
def reader():
    """A type with shared handlers: one reads only its state, one the database, one fails."""
    obj = VirtualObject("LoopReader", access=lambda user, key, handler: user.is_authenticated)

    @obj.shared
    def entries(ctx: SharedObjectContext) -> dict:
        return {"items": ctx.get("items", []), "key": ctx.key}

    @obj.shared
    def users(ctx: SharedObjectContext) -> int:
        return User.objects.count()

    @obj.shared
    def broken(ctx: SharedObjectContext) -> int:
        return 1 // 0

    yield obj
    unregister("LoopReader")


def post(app: Application, path: str, body: bytes = b"", headers: dict | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(
                path, content=body, headers={"Content-Type": "application/json", **(headers or {})}
            )

    return app.loop.run_until_complete(go())


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def meta(headers: dict[str, str]) -> dict[str, str]:
    """Headers as Django's test client takes them."""
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


def warm(app: Application, token: str, key: str = "warm") -> None:
    """A send to make the key's row; the first also puts the token in the process's cache (the threads
    answer it)."""
    response = post(app, f"/ingress/Recorder/{key}/append/send", b'{"value": 0}', auth(token))
    assert response.status_code == 202, response.text


def test_a_send_to_a_known_key_is_answered_on_the_loop_and_committed(app, token):
    warm(app, token)
    before = app.threaded.count
    response = post(app, "/ingress/Recorder/warm/append/send", b'{"value": 5}', auth(token))
    assert app.threaded.count == before, "the threads answered a send the loop can answer"
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "Accepted" and response.headers["x-restate-id"] == body["invocationId"]
    invocation = Invocation.objects.get(uid=body["invocationId"][4:])
    assert (invocation.key, invocation.handler, invocation.input, invocation.status) == (
        "warm",
        "append",
        {"value": 5},
        Status.PENDING,
    )
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_an_uncached_token_goes_to_the_threads_and_a_new_key_is_made_on_the_loop(app, token):
    response = post(app, "/ingress/Recorder/fresh/append/send", b'{"value": 1}', auth(token))
    assert response.status_code == 202 and app.threaded.count == 1
    assert Invocation.objects.filter(key="fresh").count() == 1
    response = post(app, "/ingress/Recorder/fresh2/append/send", b'{"value": 2}', auth(token))  # a new key
    assert response.status_code == 202 and app.threaded.count == 1, "the threads made a new key's row"
    invocation = Invocation.objects.get(key="fresh2")
    assert (invocation.instance.type_name, invocation.instance.key, invocation.input) == (
        "Recorder",
        "fresh2",
        {"value": 2},
    )
    assert Invocation.objects.count() == 2 and Instance.objects.filter(key__startswith="fresh").count() == 2


def test_a_new_key_whose_row_goes_again_is_left_to_the_threads(app, token, monkeypatch):
    """The key's row made on the loop and deleted before its invocation is inserted (an operator's delete):
    nothing was written, and the threads make the row again and insert the invocation once."""
    import objects.asgi

    warm(app, token)
    nothing = ("SELECT 1 WHERE false", [])
    monkeypatch.setattr(objects.asgi, "instance_create_statement", lambda connection, type_name, key: nothing)
    before = app.threaded.count
    response = post(app, "/ingress/Recorder/gone/append/send", b'{"value": 3}', auth(token))
    assert response.status_code == 202 and app.threaded.count == before + 1
    assert Invocation.objects.filter(key="gone").count() == 1


def test_a_raw_path_key_with_a_slash_is_one_key_on_both_sides(app, token):
    warm(app, token, key="a%2Fb")  # the threads: RAW_URI from the scope's raw path
    before = app.threaded.count
    post(app, "/ingress/Recorder/a%2Fb/append/send", b'{"value": 2}', auth(token))  # the loop
    assert app.threaded.count == before
    assert sorted(Invocation.objects.values_list("key", flat=True)) == ["a/b", "a/b"]


@pytest.mark.parametrize(
    ("path", "body", "extra", "status"),
    [
        ("/ingress/Nope/k/append", b"{}", {}, 404),
        ("/ingress/Recorder/k/nope", b"{}", {}, 404),
        ("/ingress/Recorder/" + "k" * 300 + "/append", b'{"value": 1}', {}, 400),
        ("/ingress/Recorder/warm/append", b'{"value": ', {}, 400),
        ("/ingress/Recorder/warm/append", b'{"value": [1]}', {}, 400),
        ("/ingress/Recorder/warm/append/send", b'{"value": "x"}' + b" " * (1024 * 1024), {}, 413),
        ("/ingress/Recorder/warm/append/nope", b"{}", {}, 400),
        ("/ingress/Recorder/warm/append", b"{}", {"Authorization": "Token"}, 401),
    ],
)
def test_refusals_on_the_loop_are_the_ingress_answers(app, token, path, body, extra, status):
    """Each refusal answered on the loop (nothing written) exactly as Django's ingress answers it on the
    threads: status, body, headers."""
    warm(app, token)
    before, rows = app.threaded.count, Invocation.objects.count()
    headers = {**auth(token), **extra}
    looped = post(app, path, body, headers)
    assert app.threaded.count == before, f"{path}: answered by the threads"
    assert Invocation.objects.count() == rows
    django = Client().generic("POST", path, body, content_type="application/json", RAW_URI=path, **meta(headers))
    assert (
        (looped.status_code, looped.content)
        == (django.status_code, django.content)
        == (
            status,
            django.content,
        )
    ), json.loads(looped.content)
    assert {n: looped.headers.get(n) for n in COMPARED} == {n: django.get(n) for n in COMPARED}


def test_a_bad_token_is_refused_like_the_ingress_refuses_it(app, token):
    """An unknown token is not cached: the threads look it up and answer 401."""
    response = post(app, "/ingress/Recorder/k/append", b"{}", auth("0" * 40))
    assert response.status_code == 401 and response.json()["message"] == "Invalid token."
    assert app.threaded.count == 1


def test_an_access_rule_that_reads_the_database_is_answered_by_the_threads(app, token, db_rule):
    warm(app, token)
    post(app, "/ingress/LoopDbRule/k/note/send", b"{}", auth(token))  # a new key
    before = app.threaded.count
    response = post(app, "/ingress/LoopDbRule/k/note/send", b"{}", auth(token))
    assert response.status_code == 202, response.text  # not 403: the rule ran on a thread
    assert app.threaded.count == before + 1
    assert Invocation.objects.filter(type_name="LoopDbRule").count() == 2


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ingress/Recorder/warm/append/send?delay=1h", {}),
        ("/ingress/Recorder/warm/append/send", {"Idempotency-Key": "i1"}),
        ("/ingress/Recorder/warm/append/send", {"Cookie": f"{settings.SESSION_COOKIE_NAME}=none"}),
    ],
)
def test_delays_idempotency_keys_and_session_cookies_go_to_the_threads(app, token, path, headers):
    warm(app, token)
    before = app.threaded.count
    response = post(app, path, b'{"value": 3}', {**auth(token), **headers})
    assert response.status_code == 202, response.text
    assert app.threaded.count == before + 1
    assert Invocation.objects.filter(input={"value": 3}).count() == 1


def test_the_loop_answers_503_when_the_database_is_unreachable(app, token, monkeypatch, settings):
    warm(app, token)

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise psycopg.OperationalError("connection refused")

    settings.OBJECTS_WEB_DB_POOL_TIMEOUT = 0.5  # how long a request waits for a connection the pool cannot open
    app.loop.run_until_complete(app.postgres.close())  # its open connections gone: the next must connect
    monkeypatch.setattr(psycopg.AsyncConnection, "connect", refused)
    response = post(app, "/ingress/Recorder/warm/append/send", b'{"value": 4}', auth(token))
    assert response.status_code == 503
    assert response.json() == {
        "code": 503,
        "message": "The database is unavailable; retry shortly.",
        "source": "ingress",
    }
    assert not Invocation.objects.filter(input={"value": 4}).exists()


@pytest.mark.workers
def test_a_call_waits_for_its_outcome_on_the_loop(app, token, live):
    warm(app, token, key="calls")
    before = app.threaded.count
    first = post(app, "/ingress/Recorder/calls/append", b'{"value": 8}', auth(token))
    second = post(app, "/ingress/Recorder/calls/append", b'{"value": 9}', auth(token))
    assert (first.status_code, first.content, second.content) == (200, b"2", b"3")
    refused = post(app, "/ingress/Recorder/calls/refuse", b'{"message": "no", "status": 409}', auth(token))
    assert app.threaded.count == before, "a call to a known key was answered by the threads"
    assert refused.status_code == 409
    assert refused.json()["source"] == "invocation" and refused.headers["x-restate-error-source"] == "invocation"
    invocation = Invocation.objects.get(uid=first.headers["x-restate-id"][4:])
    assert invocation.status == Status.SUCCEEDED and invocation.output == 2


@pytest.mark.workers
def test_a_calls_insert_does_not_wait_for_the_flush_and_a_sends_does(app, token, live, monkeypatch):
    """docs/decisions/0007: a call's insert commits with synchronous_commit off (the worker's flushed commit
    covers it before the caller is answered); a send, answered at once, keeps a flushed commit."""
    warm(app, token, key="flushes")
    with connections["default"].cursor() as cursor:  # the test server runs with it off, for speed
        cursor.execute("ALTER SYSTEM SET synchronous_commit = on")
        cursor.execute("SELECT pg_reload_conf()")
    request_reset = connections["default"].cursor()
    settings_seen: list[str] = []
    run = app.postgres._run

    async def spied(sql: str, params: list[Any], *, one: bool, flush: bool = True) -> Any:
        row = await run(sql, params, one=one, flush=flush)
        if sql.startswith("INSERT"):
            settings_seen.append((await run("SHOW synchronous_commit", [], one=True, flush=flush))[0])
        return row

    monkeypatch.setattr(app.postgres, "_run", spied)
    try:
        call = post(app, "/ingress/Recorder/flushes/append", b'{"value": 1}', auth(token))
        send = post(app, "/ingress/Recorder/flushes/append/send", b'{"value": 2}', auth(token))
    finally:
        request_reset.execute("ALTER SYSTEM RESET synchronous_commit")
        request_reset.execute("SELECT pg_reload_conf()")
    assert (call.status_code, send.status_code) == (200, 202)
    assert settings_seen == ["off", "on"]


def test_a_shared_call_reads_the_committed_state_on_the_loop(app, token, reader):
    warm(app, token)
    instance = Instance.objects.create(type_name="LoopReader", key="a/b")
    StateEntry.objects.create(instance=instance, name="items", value=[1, {"x": "é"}])
    before = app.threaded.count
    known = post(app, "/ingress/LoopReader/a%2Fb/entries", b"", auth(token))
    missing = post(app, "/ingress/LoopReader/nobody/entries", b"", auth(token))
    assert app.threaded.count == before, "a shared call was answered by the threads"
    assert (known.status_code, known.json()) == (200, {"items": [1, {"x": "é"}], "key": "a/b"})
    assert (missing.status_code, missing.json()) == (200, {"items": [], "key": "nobody"})
    assert (
        known.headers["x-restate-id"].startswith("inv_")
        and not Invocation.objects.filter(type_name="LoopReader").exists()
    )
    path = "/ingress/LoopReader/a%2Fb/entries"
    django = Client().generic("POST", path, b"", content_type="application/json", RAW_URI=path, **meta(auth(token)))
    assert known.content == django.content


def test_a_shared_handler_that_reads_the_database_is_answered_by_the_threads(app, token, reader):
    warm(app, token)
    before = app.threaded.count
    response = post(app, "/ingress/LoopReader/k/users", b"", auth(token))
    assert (response.status_code, response.json()) == (200, User.objects.count())
    assert app.threaded.count == before + 1


def test_a_failing_shared_handler_is_the_invocations_500_on_the_loop(app, token, reader):
    warm(app, token)
    before = app.threaded.count
    looped = post(app, "/ingress/LoopReader/k/broken", b"", auth(token))
    assert app.threaded.count == before
    path = "/ingress/LoopReader/k/broken"
    django = Client().generic("POST", path, b"", content_type="application/json", RAW_URI=path, **meta(auth(token)))
    assert looped.status_code == django.status_code == 500
    assert looped.json() == json.loads(django.content)
    assert looped.json()["source"] == "invocation" and "ZeroDivisionError" in looped.json()["message"]


def post_many(app: Application, requests: list[tuple[str, bytes]], headers: dict) -> list[httpx.Response]:
    """The requests sent at once, each on its own connection, on the application's loop."""

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await asyncio.gather(
                *(
                    client.post(path, content=body, headers={"Content-Type": "application/json", **headers})
                    for path, body in requests
                )
            )

    return app.loop.run_until_complete(go())


@pytest.fixture
def statements(app, monkeypatch):
    """The loop's statements, in order: ("one", sql) or ("group", rows)."""
    seen: list[tuple[str, Any]] = []
    fetchone, fetchall = app.postgres.fetchone, app.postgres.fetchall

    async def one(sql: str, params: list[Any], **flush: bool) -> Any:
        seen.append(("one", sql))
        return await fetchone(sql, params, **flush)

    async def many(sql: str, params: list[Any], **flush: bool) -> Any:
        seen.append(("group", len(params[0])) if "unnest" in sql else ("all", sql))
        return await fetchall(sql, params, **flush)

    monkeypatch.setattr(app.postgres, "fetchone", one)
    monkeypatch.setattr(app.postgres, "fetchall", many)
    return seen


def test_sends_that_arrive_together_are_inserted_by_one_statement_in_their_order(app, token, statements, monkeypatch):
    """While the loop's first statement runs, the sends behind it wait and go into the next one together; each
    key's invocations keep the order the sends arrived in, and each partition is rung once per group."""
    import objects.loop.inserts

    keys = [f"g{n}" for n in range(5)]
    for key in keys:
        warm(app, token, key=key)
    rung: list[list[int]] = []
    ring = objects.loop.inserts.ring

    async def counted(partitions: list[int]) -> None:
        rung.append(list(partitions))
        await ring(partitions)

    monkeypatch.setattr(objects.loop.inserts, "ring", counted)
    statements.clear()
    before = app.threaded.count
    requests = [(f"/ingress/Recorder/{keys[n % 5]}/append/send", json.dumps({"value": n}).encode()) for n in range(20)]
    responses = post_many(app, requests, auth(token))
    assert [r.status_code for r in responses] == [202] * 20
    assert app.threaded.count == before
    sizes = [1 if kind == "one" else size for kind, size in statements]
    assert sum(sizes) == 20 and len(sizes) <= 2 and max(sizes) >= 10, statements
    for key in keys:
        values = [i["value"] for i in Invocation.objects.filter(key=key).order_by("id").values_list("input", flat=True)]
        assert values == [0, *range(keys.index(key), 20, 5)], (key, values)  # the warm send first, then in order
    ids = {r.json()["invocationId"]: r for r in responses}
    assert Invocation.objects.filter(uid__in=[i[4:] for i in ids]).count() == 20
    partitions = {Invocation.objects.get(uid=i[4:]).partition for i in ids}
    assert len(rung) == len(sizes) and all(len(p) == len(set(p)) for p in rung)
    assert set().union(*rung) == partitions


def test_a_new_key_in_a_group_gets_its_row_after_the_group(app, token, statements):
    warm(app, token, key="known")
    before = app.threaded.count
    requests = [("/ingress/Recorder/known/append/send", b'{"value": 1}')] * 3 + [
        ("/ingress/Recorder/newcomer/append/send", b'{"value": 2}')
    ]
    responses = post_many(app, requests, auth(token))
    assert [r.status_code for r in responses] == [202] * 4
    assert app.threaded.count == before
    assert statements[0] == ("group", 4), statements  # the new key: no row inserted by the group
    assert [kind for kind, _ in statements[1:]] == ["one", "one"]  # its key's row, then itself
    assert Invocation.objects.filter(key="known", input={"value": 1}).count() == 3
    assert Invocation.objects.filter(key="newcomer").count() == 1


def test_a_group_refused_by_the_database_is_inserted_one_by_one(app, token, statements, monkeypatch):
    """A group whose statement PostgreSQL refuses wrote nothing: each of its invocations is inserted alone,
    once."""
    import objects.loop.inserts

    warm(app, token, key="refused")
    monkeypatch.setattr(objects.loop.inserts, "fresh_group_sql", lambda: "SELECT 1 / 0")
    requests = [("/ingress/Recorder/refused/append/send", json.dumps({"value": n}).encode()) for n in range(6)]
    responses = post_many(app, requests, auth(token))
    assert [r.status_code for r in responses] == [202] * 6
    assert [s[0] for s in statements].count("one") == 6
    values = list(Invocation.objects.filter(key="refused").order_by("id").values_list("input", flat=True))
    assert sorted(v["value"] for v in values[1:]) == list(range(6))


def test_a_group_whose_connection_is_lost_answers_503(app, token, monkeypatch):
    """A lost connection leaves the group's statement in doubt: its requests get the ingress's 503 (as one
    invocation alone would), none is inserted again."""
    warm(app, token, key="lost")
    fetchall = app.postgres.fetchall

    async def lost(sql: str, params: list[Any], **flush: bool) -> Any:
        if "unnest" in sql:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await fetchall(sql, params)

    monkeypatch.setattr(app.postgres, "fetchall", lost)
    requests = [("/ingress/Recorder/lost/append/send", json.dumps({"value": n}).encode()) for n in range(5)]
    responses = post_many(app, requests, auth(token))
    assert [r.status_code for r in responses] == [503] * 5
    assert responses[0].json()["message"] == "The database is unavailable; retry shortly."
    assert Invocation.objects.filter(key="lost").count() == 1  # the warm send alone: none inserted again


def test_a_request_that_goes_away_does_not_cancel_its_group(app, token):
    """The group's statement runs in its own task: a waiting request cancelled (its client went away) leaves
    the others answered and its own invocation written, as a request's own statement would have been."""
    from django.db import connection as django_connection
    from django.utils import timezone

    from objects.services import fresh_statement

    warm(app, token, key="gone")

    def statement(n: int) -> tuple[str, list[Any], Any]:
        fields = {
            "type_name": "Recorder",
            "key": "gone",
            "handler": "append",
            "kind": "exclusive",
            "partition": 0,
            "input": {"value": n},
            "caller": None,
            "not_before": None,
        }
        sql, params, chosen = fresh_statement(django_connection, fields, timezone.now())
        return sql, params, chosen["uid"]

    async def go() -> list[Any]:
        waiting = [asyncio.ensure_future(app.group.insert(*statement(n), None)) for n in range(4)]
        await asyncio.sleep(0)
        waiting[2].cancel()
        return await asyncio.gather(*waiting, return_exceptions=True)

    results = app.loop.run_until_complete(go())
    assert isinstance(results[2], asyncio.CancelledError)
    assert all(isinstance(r, tuple) for n, r in enumerate(results) if n != 2), results
    app.loop.run_until_complete(asyncio.sleep(0.2))  # the group's task finishes
    assert Invocation.objects.filter(key="gone").count() == 5

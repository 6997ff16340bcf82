"""Rate limits shared by every web process (counters in Redis): the ingress per user and per client address on
both paths (token calls on the event loop, session requests on the threads), and failed sign-ins per address
and per username on the shop's and the admin's login forms. 429 with Retry-After in the ingress's error shape."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from objects import conf

from .servers import fetch, server_with
from .test_attach_limits import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

USER_LIMIT = 5  # per second
ADDRESS_LIMIT = 10  # per second
LOGIN_LIMIT = 3  # per minute
BURST = 40


@pytest.fixture(scope="module")
def per_user_web(django_db_setup, django_db_blocker):
    with server_with(
        django_db_blocker,
        OBJECTS_RATE_LIMIT_USER=f"{USER_LIMIT}/s",
        OBJECTS_RATE_LIMIT_ADDRESS="0",
        OBJECTS_RATE_LIMIT_LOGIN=f"{LOGIN_LIMIT}/min",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def per_address_web(django_db_setup, django_db_blocker):
    with server_with(
        django_db_blocker, OBJECTS_RATE_LIMIT_USER="0", OBJECTS_RATE_LIMIT_ADDRESS=f"{ADDRESS_LIMIT}/s"
    ) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_counters(redis_client):
    """Counters of earlier tests (and of their second) out of the way, and this test's out of the later ones'
    (the session's web server counts sign-ins of 127.0.0.1 and alice in the same keys)."""

    def forget() -> None:
        for key in redis_client.scan_iter("objects:rate:*"):
            redis_client.delete(key)

    forget()
    time.sleep(1.05 - time.time() % 1)  # start at the beginning of a second
    yield
    forget()


def within_one_minute(needed: float = 20.0) -> None:
    """Wait for the next minute when fewer than `needed` seconds are left of this one: sign-ins are counted per
    minute, so attempts that straddle a minute's end would find the count started again."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.05)


def shared_call(server, headers: dict[str, str]):
    """A shared call (Recorder.items): answered on the event loop with a token."""
    return fetch(server.url, "POST", "/ingress/Recorder/rl/items", headers=headers, timeout=15)


def unknown_output(server, headers: dict[str, str]):
    """An output of an unknown invocation: answered by the threads (404, or 401 without credentials)."""
    return fetch(server.url, "GET", f"/ingress/restate/invocation/inv_{uuid.uuid4().hex}/output", headers=headers)


def until_limited(send, ok: int) -> tuple[int, object]:
    """Send until a 429: (how many answered `ok` before it, the 429)."""
    for passed in range(BURST):
        answer = send()
        if answer.status == 429:
            return passed, answer
        assert answer.status == ok, answer.body
    raise AssertionError(f"no 429 in {BURST} requests")


def assert_limited(answer, words: str) -> None:
    body = answer.json()
    assert body["code"] == 429 and body["source"] == "server", body
    assert answer.headers["x-restate-error-source"] == "server"
    assert words in body["message"] and "retry" in body["message"].lower(), body["message"]
    assert 1 <= int(answer.headers["retry-after"]) <= 60


@pytest.mark.parametrize("path", ["event loop", "threads"])
def test_a_user_over_the_limit_gets_429_and_other_users_are_counted_apart(live, per_user_web, alice, bob, path):
    if path == "event loop":
        as_alice, as_bob, ok = alice.header, bob.header, 200
        send = shared_call
    else:
        as_alice, as_bob, ok = session_cookie(alice.user), session_cookie(bob.user), 404
        send = unknown_output
    passed, limited = until_limited(lambda: send(per_user_web, as_alice), ok)
    assert passed >= USER_LIMIT
    assert_limited(limited, "alice")
    assert send(per_user_web, as_bob).status == ok


@pytest.mark.parametrize("path", ["event loop", "threads"])
def test_an_address_over_the_limit_gets_429_whoever_asks(live, per_address_web, alice, bob, path):
    if path == "event loop":
        people = [alice.header, bob.header]
        ok = 200
        send = shared_call
    else:
        people = [{}, session_cookie(bob.user)]  # anonymous (401) and a session (404): both count
        ok = None
        send = unknown_output
    answers = [send(per_address_web, people[i % 2]) for i in range(BURST)]
    statuses = [a.status for a in answers]
    assert 429 in statuses, statuses
    first = statuses.index(429)
    assert first >= ADDRESS_LIMIT, statuses
    assert all(s != 429 for s in statuses[:ADDRESS_LIMIT]), statuses
    if ok is not None:
        assert set(statuses[:first]) == {ok}
    assert_limited(answers[first], "127.0.0.1")


def test_without_limits_nothing_is_counted(live, alice, redis_client):
    """0 turns a limit off, and then no counter is kept."""
    with override_settings(OBJECTS_RATE_LIMIT_USER="0", OBJECTS_RATE_LIMIT_ADDRESS="0"):
        response = Client().get(f"/ingress/restate/invocation/inv_{uuid.uuid4().hex}/output", **alice.auth)
    assert response.status_code == 404
    assert not list(redis_client.scan_iter("objects:rate:*"))


def sign_in(session: requests.Session, base: str, path: str, username: str, password: str) -> requests.Response:
    page = session.get(base + path, timeout=15)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    return session.post(
        base + path,
        data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": base + path},
        allow_redirects=False,
        timeout=15,
    )


def test_failed_sign_ins_over_the_limit_get_429_on_both_login_forms(live, per_user_web, alice, bob):
    base, session = per_user_web.url, requests.Session()
    within_one_minute()
    answers = [sign_in(session, base, "/accounts/login/", "alice", "wrong") for _ in range(2 * LOGIN_LIMIT + 1)]
    statuses = [a.status_code for a in answers]
    assert statuses[:LOGIN_LIMIT] == [200] * LOGIN_LIMIT, statuses  # the form again, with its error
    assert 429 in statuses, statuses
    limited = answers[statuses.index(429)]
    body = limited.json()
    assert body["code"] == 429 and body["source"] == "server" and "sign-in" in body["message"], body
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # the admin's form shares the counters; so does a right password, and another user from this address
    assert sign_in(session, base, "/admin/login/", "alice", "wrong").status_code == 429
    assert sign_in(session, base, "/accounts/login/", "alice", "pw-alice").status_code == 429
    assert sign_in(requests.Session(), base, "/admin/login/", "bob", "pw-bob").status_code == 429


@override_settings(OBJECTS_RATE_LIMIT_LOGIN="3/min")
def test_failed_sign_ins_are_counted_per_address_and_per_username(live, alice, bob):
    def attempt(username: str, password: str, address: str) -> int:
        client = Client(REMOTE_ADDR=address)
        return client.post("/accounts/login/", {"username": username, "password": password}).status_code

    within_one_minute()
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):  # one username from many addresses
        assert attempt("alice", "wrong", address) == 200
    assert attempt("alice", "pw-alice", "10.0.0.4") == 429
    assert attempt("bob", "pw-bob", "10.0.0.4") == 302  # another username, an address without failures
    for username in ("carol", "dave", "erin"):  # many usernames from one address
        assert attempt(username, "wrong", "10.0.0.5") == 200
    assert attempt("bob", "pw-bob", "10.0.0.5") == 429
    for _ in range(5):  # a successful sign-in is not a failure: it is not counted
        assert attempt("bob", "pw-bob", "10.0.0.6") == 302


def test_rate_settings_are_validated():
    cases = {"5/s": (5, 1), "10/min": (10, 60), "100/h": (100, 3600), "7/day": (7, 86400), "2000/second": (2000, 1)}
    for text, (count, seconds) in cases.items():
        with override_settings(OBJECTS_RATE_LIMIT_USER=text):
            rate = conf.get("OBJECTS_RATE_LIMIT_USER")
            assert (rate.count, rate.seconds) == (count, seconds)
    for off in ("0", 0, ""):
        with override_settings(OBJECTS_RATE_LIMIT_LOGIN=off):
            assert conf.get("OBJECTS_RATE_LIMIT_LOGIN") is None
    for bad in ("5", "five/s", "5/fortnight", "-1/s", "5/s/s", 5):
        with override_settings(OBJECTS_RATE_LIMIT_ADDRESS=bad), pytest.raises(ImproperlyConfigured, match="/min"):
            conf.get("OBJECTS_RATE_LIMIT_ADDRESS")

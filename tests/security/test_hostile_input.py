"""Hostile input over real HTTP (gunicorn passes the raw path): every request gets a 4xx with a clear message
or, for a strange but valid key, exactly that key; never a 5xx, never a stray state change, and the server
keeps serving."""

from __future__ import annotations

import json
import secrets
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from objects.models import Instance, Invocation, StateEntry

pytestmark = pytest.mark.workers

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _counts() -> tuple[int, int, int]:
    return Instance.objects.count(), Invocation.objects.count(), StateEntry.objects.count()


def _clear_error(response) -> str:
    """The message of a 4xx: our JSON `message`, DRF's `detail`, or the web server's own text."""
    assert 400 <= response.status < 500, (response.status, response.body[:300])
    try:
        body = response.json()
    except ValueError:
        text = response.body.decode("utf-8", "replace").strip()
        assert text, f"{response.status} with an empty body"
        return text
    message = body.get("message") or body.get("detail") if isinstance(body, dict) else None
    assert message, f"{response.status} without a message: {body}"
    return message


def _serving(raw_http, staff) -> None:
    assert raw_http.request("GET", "/ingress/restate/health").status == 200
    ok = raw_http.request("POST", "/ingress/Recorder/still-serving/items", b"", staff.header)
    assert ok.status == 200, ok.body[:200]


def _valid_key(key: str) -> bool:
    return 1 <= len(key) <= 255 and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in key)


# -- paths ------------------------------------------------------------------------------------------------
REFUSED_PATHS = {
    "invalid UTF-8 key": "/ingress/Recorder/%FF/append",
    "overlong UTF-8 slash": "/ingress/Recorder/%C0%AF/append",
    "lone surrogate": "/ingress/Recorder/%ED%A0%80/append",
    "NUL key": "/ingress/Recorder/%00/append",
    "control character key": "/ingress/Recorder/a%0Ab/append",
    "empty key": "/ingress/Recorder//append",
    "256-character key": "/ingress/Recorder/" + "k" * 256 + "/append",
    "NUL in the handler": "/ingress/Recorder/k/append%00",
    "NUL in the type": "/ingress/Recorder%00/k/append",
    "SQL in the type": "/ingress/Recorder';--/k/append",
    "dot-dot type": "/ingress/../k/append",
    "traversal out of the ingress": "/ingress/../../admin/",
    "unknown restate path": "/ingress/restate/admin/x",
    "invocation id of junk": "/ingress/restate/invocation/inv_%FF'--/output",
    "too many segments": "/ingress/Recorder/a/b/c/d/e",
}


def test_hostile_paths_get_a_clear_4xx_and_change_nothing(live_web, raw_http, staff):
    before = _counts()
    seen = {}
    for name, target in REFUSED_PATHS.items():
        method = "GET" if "/restate/" in target else "POST"
        response = raw_http.request(method, target, json.dumps({"value": 1}).encode(), staff.header)
        seen[name] = (response.status, _clear_error(response)[:80])
    long_key = raw_http.request("POST", "/ingress/Recorder/" + "k" * 10_000 + "/append", b'{"value":1}', staff.header)
    seen["10,000-character key"] = (long_key.status, _clear_error(long_key)[:80])
    assert _counts() == before
    _serving(raw_http, staff)
    print("\nhostile paths:\n" + "\n".join(f"  {name}: {status} {message}" for name, (status, message) in seen.items()))


STRANGE_BUT_VALID_KEYS = [
    "..",
    ".",
    "../../etc/passwd",
    "'",
    '"',
    "' OR '1'='1",
    "'; DROP TABLE objects_instance; --",
    "Robert'); DELETE FROM objects_stateentry;--",
    "%00",
    "%FF",
    "a/b?c#d e+f",
    "\\x00",
    "<script>alert(1)</script>",
    "k" * 255,
    "🙂" * 10,
]


def test_strange_but_valid_keys_address_exactly_that_key(live_web, raw_http, staff):
    for n, key in enumerate(STRANGE_BUT_VALID_KEYS):
        target = f"/ingress/Recorder/{quote(key, safe='')}/append"
        response = raw_http.request("POST", target, json.dumps({"value": n}).encode(), staff.header)
        assert response.status == 200, (key, response.status, response.body[:200])
    keys = set(Instance.objects.filter(type_name="Recorder").values_list("key", flat=True))
    assert keys == set(STRANGE_BUT_VALID_KEYS), keys ^ set(STRANGE_BUT_VALID_KEYS)
    for n, key in enumerate(STRANGE_BUT_VALID_KEYS):
        entry = StateEntry.objects.get(instance__type_name="Recorder", instance__key=key, name="items")
        assert entry.value == [n], (key, entry.value)
    _serving(raw_http, staff)


def test_generated_keys_are_refused_or_kept_exactly(live_web, raw_http, staff):
    outcomes = {"accepted": 0, "refused": 0}

    @HYPOTHESIS
    @given(raw=st.one_of(st.text(max_size=300).map(lambda t: t.encode("utf-8")), st.binary(max_size=40)))
    def check(raw: bytes) -> None:
        target = f"/ingress/Recorder/{quote(raw, safe='')}/items"
        response = raw_http.request("POST", target, b"", staff.header)
        try:
            key = raw.decode("utf-8")
        except UnicodeDecodeError:
            key = None
        if key is not None and _valid_key(key):
            assert response.status == 200, (raw, response.status, response.body[:200])
            assert response.json() == [], "a key nobody wrote to reads as empty"
            outcomes["accepted"] += 1
        else:
            assert response.status == 400, (raw, response.status, response.body[:200])
            _clear_error(response)
            outcomes["refused"] += 1

    before = _counts()
    check()
    assert _counts() == before, "a read created rows"
    _serving(raw_http, staff)
    print(f"\ngenerated keys: {outcomes}")


# -- bodies -----------------------------------------------------------------------------------------------
REFUSED_BODIES = {
    "nested 10,000 deep": b"[" * 10_000 + b"]" * 10_000,
    "object nested 10,000 deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "1e400": b'{"value": 1e400}',
    "-1e400": b'{"value": -1e400}',
    "NaN": b'{"value": NaN}',
    "Infinity": b'{"value": Infinity}',
    "a 10,000-digit integer": b'{"value": ' + b"9" * 10_000 + b"}",
    "float value": b'{"value": 1.5}',
    "list value": b'{"value": [1]}',
    "object value": b'{"value": {"a": 1}}',
    "null value": b'{"value": null}',
    "missing value": b"{}",
    "unknown field": b'{"value": 1, "admin": true}',
    "a list body": b"[1, 2]",
    "a string body": b'"value"',
    "a number body": b"123",
    "invalid UTF-8": b'{"value": "\xff\xfe"}',
    "NUL in a string": b'{"value": "a\\u0000b"}',
    "lone surrogate": b'{"value": "\\ud800"}',
    "truncated JSON": b'{"value": ',
    "form encoding": b"value=1",
    "trailing garbage": b'{"value": 1} {"value": 2}',
}


def test_hostile_bodies_get_a_clear_4xx_and_change_nothing(live_web, raw_http, staff):
    before = _counts()
    seen = {}
    for name, body in REFUSED_BODIES.items():
        response = raw_http.request("POST", "/ingress/Recorder/body/append", body, staff.header)
        seen[name] = (response.status, _clear_error(response)[:90])
        assert response.status in (400, 413), (name, response.status)
    huge = raw_http.request("POST", "/ingress/Recorder/body/append", b'{"value": "' + b"x" * 50_000_000 + b'"}')
    seen["50 MB body (anonymous)"] = (huge.status, _clear_error(huge)[:90])
    huge = raw_http.request("POST", "/ingress/Recorder/body/append", b"[" + b"1," * 25_000_000 + b"1]", staff.header)
    seen["50 MB body"] = (huge.status, _clear_error(huge)[:90])
    assert huge.status == 413, huge.status
    assert _counts() == before
    _serving(raw_http, staff)
    print(
        "\nhostile bodies:\n" + "\n".join(f"  {name}: {status} {message}" for name, (status, message) in seen.items())
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def test_generated_bodies_are_refused_or_applied_exactly(live_web, raw_http, staff):
    outcomes = {"applied": 0, "refused": 0}
    state = {"n": 0}

    @HYPOTHESIS
    @given(
        body=st.one_of(
            json_values,
            st.fixed_dictionaries({"value": json_values}),
            st.fixed_dictionaries({"value": st.integers() | st.text(max_size=30)}),
        )
    )
    def check(body) -> None:
        state["n"] += 1
        key = f"gen-{state['n']}"
        response = raw_http.request("POST", f"/ingress/Recorder/{key}/append", json.dumps(body).encode(), staff.header)
        assert response.status < 500, (body, response.status, response.body[:200])
        value = body.get("value") if isinstance(body, dict) else None
        well_typed = isinstance(value, (int, str)) and not isinstance(value, bool) and "\x00" not in str(value)
        if isinstance(value, int) and not -(2**63) <= value <= 2**63 - 1:
            well_typed = False  # integers are 64-bit (a clear 400 names the range)
        if isinstance(body, dict) and set(body) == {"value"} and well_typed:
            assert response.status == 200, (body, response.status, response.body[:200])
            assert StateEntry.objects.get(instance__key=key, name="items").value == [value]
            outcomes["applied"] += 1
        else:
            assert response.status == 400, (body, response.status, response.body[:200])
            _clear_error(response)
            assert not Instance.objects.filter(key=key).exists(), f"refused input left a row for {key}"
            outcomes["refused"] += 1

    check()
    _serving(raw_http, staff)
    print(f"\ngenerated bodies: {outcomes}")


# -- pages of the shop and the admin ----------------------------------------------------------------------
def _signed_in(person) -> dict[str, str]:
    """A signed-in browser's cookies (session and CSRF) and the CSRF header that goes with them."""
    from django.conf import settings as django_settings
    from django.test import Client

    client = Client()
    client.force_login(person.user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    csrf = secrets.token_hex(16)
    cookies = f"{django_settings.SESSION_COOKIE_NAME}={session}; {django_settings.CSRF_COOKIE_NAME}={csrf}"
    return {"Cookie": cookies, "X-CSRFToken": csrf, "Content-Type": "application/x-www-form-urlencoded"}


def test_the_wallet_page_with_a_cursor_that_is_no_number_says_so(live_web, raw_http, alice):
    """`before` is the paging cursor of the shop's wallet page: a digit that is not ASCII (`²`, `٣`) or a number
    too long for Python's int() answered 500."""
    browser = _signed_in(alice)
    for before in ("²", "٣", "9" * 5000, "-1", "abc"):
        page = raw_http.request("GET", f"/wallet/?before={quote(before)}", headers=browser)
        assert page.status < 500, (before[:20], page.status, page.body[:300])
        shown = page.body.decode().partition('<div id="messages"')[2].partition("</div>")[0]
        assert "before: the page cursor must be a whole number" in shown, (before[:20], shown)
    assert raw_http.request("GET", "/wallet/?before=5", headers=browser).status == 200


@pytest.mark.parametrize(
    "value, message",
    [
        ('"\\u0000"', "NUL character"),
        ('{"a": "x\\u0000y"}', "NUL character"),
        ("[" * 10_000 + "]" * 10_000, "nested deeper than 64 levels"),
        ("1e400", "out of range"),
        ('"\\ud800"', "unpaired surrogate"),
    ],
    ids=["NUL", "NUL inside", "10,000 deep", "1e400", "lone surrogate"],
)
def test_the_admin_refuses_a_state_value_it_cannot_store_with_a_form_error(live_web, raw_http, staff, value, message):
    made = raw_http.request("POST", "/ingress/Counter/admin-edit%2Fx/increment", b"{}", staff.header)
    assert made.status == 200, made.body[:300]
    instance = Instance.objects.get(type_name="Counter", key="admin-edit/x")
    form = urlencode({"name": "note", "value": value, "version": instance.version}).encode()
    page = raw_http.request("POST", f"/admin/objects/instance/{instance.pk}/state/edit/", form, _signed_in(staff))
    assert page.status == 400, (page.status, page.body[:300])
    assert message in page.body.decode(), page.body[-3000:]
    assert not StateEntry.objects.filter(instance=instance, name="note").exists()

"""schemathesis over the OpenAPI schema (management API and ingress) with a staff token, against gunicorn:
schema-valid and schema-violating requests alike never get a 5xx, and every 4xx carries a message."""

from __future__ import annotations

import re
from collections import Counter

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

pytestmark = pytest.mark.workers

MAX_EXAMPLES = 4
# Test-only handlers that block or kill a worker on purpose (hold, crash_once, crash_always) or fail on
# purpose (flaky, refuse, sneaky_write), test-only call-chain types, the types that wait durably (a waiting
# invocation holds its key until resolved or cancelled: Waiter, BenchAwait) and the docs' example types (Docs*,
# some fail on purpose); sends are left out because they only queue work (the call of the same handler is fuzzed).
SKIP = re.compile(
    r"^/ingress/(Recorder/\{key\}/(hold|crash_once|crash_always|flaky|refuse|sneaky_write)|Chain/|Relay/|Third/"
    r"|Waiter/|BenchAwait/|Docs\w*/)|/send$"
)


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)
    return str(body)


def test_schema_fuzzing_finds_no_server_error(live_web, staff):
    raw = httpx.get(f"{live_web.url}/api/schema/?format=json", headers=staff.header, timeout=60)
    assert raw.status_code == 200, raw.text[:300]
    schema = schemathesis.openapi.from_dict(raw.json())
    session = requests.Session()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    operations = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        if SKIP.search(operation.path):
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, live_web.url, staff.header, session, statuses, failures)
            except Unsatisfiable:
                pass  # nothing schema-violating can be built for this operation (e.g. no parameters)

    print(f"\nschemathesis: {operations} operations, {sum(statuses.values())} requests, statuses {dict(statuses)}")
    assert operations >= 20
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:30])
    assert httpx.get(f"{live_web.url}/ingress/restate/health").status_code == 200


def _fuzz(operation, mode, base_url, headers, session, statuses, failures) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(base_url=base_url, headers=headers, session=session, timeout=60)
        statuses[response.status_code] += 1
        label = f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r:.200} [{mode.value}]"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:300]}")
        elif response.status_code >= 400 and not _message(response):
            failures.append(f"{label}: {response.status_code} without a message")

    run()

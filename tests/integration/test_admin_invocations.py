"""The admin's invocation pages: status badges, a pending invocation blocked by a paused key, no retry for a
handler's refusal, and the calls and sends an invocation made."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from objects.models import Instance, Invocation, Status
from objects.services import invocation_submit
from objects.signals.doorbell import wait_done
from objects.testing import run_inbox
from tests.integration.admin_fixtures import invocation, messages_of, operator, put  # noqa: F401  # a fixture

INVOCATIONS = "/admin/objects/invocation/"


def run(type_name: str, key: str, handler: str, arg) -> Invocation:
    """Accept an invocation and run its key's inbox here; a worker started by an earlier test (the session's
    `workers`) may take the key first, so wait for the result either way."""
    inv, _ = invocation_submit(type_name=type_name, key=key, handler=handler, arg=arg)
    run_inbox(type_name, key)
    return wait_done(inv, 30)


def detail(client, inv: Invocation) -> str:
    return client.get(reverse("admin:objects_invocation_change", args=[inv.pk])).content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_detail_lists_the_calls_and_sends_an_invocation_made(operator):  # noqa: F811
    caller = run("HistoryCart", "a", "add_to", {"key": "b", "item": 1})
    assert caller.status == Status.SUCCEEDED
    callee = Invocation.objects.get(type_name="HistoryCart", key="b")
    sender = run("Chain", "c", "send_then", {"target": "t", "value": 7, "delay": 3600})
    sent = Invocation.objects.get(type_name="Recorder", key="t")
    assert (callee.caller_id, sent.caller_id) == (caller.pk, sender.pk)
    calls = detail(operator, caller).split('id="vo-made"')[1]
    assert "HistoryCart/b.add_item" in calls and "call" in calls
    assert reverse("admin:objects_invocation_change", args=[callee.pk]) in calls
    sends = detail(operator, sender).split('id="vo-made"')[1]
    assert "Recorder/t.append" in sends and "send" in sends and "scheduled" in sends


@pytest.mark.django_db
def test_the_list_shows_status_as_a_badge_and_a_paused_keys_pending_invocation_as_blocked(operator):  # noqa: F811
    inst = put("k", n=1)
    other = put("free", n=1)
    Instance.objects.filter(pk=inst.pk).update(paused=True, paused_reason="investigating")
    blocked = invocation(inst)
    later = invocation(other, not_before=timezone.now() + timedelta(hours=1))
    done = invocation(other, Status.SUCCEEDED)
    refused = invocation(other, Status.FAILED, error_code=409, error_message="Only 0 Poster left")
    body = operator.get(INVOCATIONS).content.decode()
    rows = {
        inv.pk: body.split(f">{inv.public_id[:12]}…<")[1].split("</tr>")[0] for inv in (blocked, later, done, refused)
    }
    assert 'class="vo-badge vo-badge-blocked"' in rows[blocked.pk] and "blocked: key paused" in rows[blocked.pk]
    assert "vo-badge-scheduled" in rows[later.pk] and "vo-badge-succeeded" in rows[done.pk]
    assert "vo-badge-refused" in rows[refused.pk] and "refused (409)" in rows[refused.pk]
    page = detail(operator, blocked)
    assert "blocked: key paused" in page and "investigating" in page


@pytest.mark.django_db
def test_retry_is_not_offered_for_a_handlers_refusal(operator):  # noqa: F811
    inst = put("k", n=1)
    refused = invocation(inst, Status.FAILED, error_code=409, error_type="TerminalError", error_message="no stock")
    crashed = invocation(inst, Status.FAILED, error_code=500, error_type="RuntimeError", attempts=10)
    assert 'value="retry_invocations"' not in detail(operator, refused)
    assert "a refusal" in detail(operator, refused)
    assert 'value="retry_invocations"' in detail(operator, crashed)
    selected = {"action": "retry_invocations", "_selected_action": [refused.pk, crashed.pk], "post": "yes"}
    response = operator.post(INVOCATIONS, selected, follow=True)
    statuses = dict(Invocation.objects.values_list("pk", "status"))
    assert (statuses[refused.pk], statuses[crashed.pk]) == (Status.FAILED, Status.PENDING)
    assert any("its handler refused it (409: no stock)" in m for m in messages_of(response))


@pytest.mark.django_db
def test_the_instance_pages_inbox_says_a_paused_keys_invocation_is_blocked(operator):  # noqa: F811
    inst = put("k", n=1)
    Instance.objects.filter(pk=inst.pk).update(paused=True, paused_reason="investigating")
    invocation(inst)
    body = operator.get(reverse("admin:objects_instance_change", args=[inst.pk])).content.decode()
    inbox = body.split('id="inbox"')[1].split('id="timers"')[0]
    assert "vo-badge-blocked" in inbox and "blocked: key paused" in inbox

"""The admin's overview: scheduled sends apart from waiting ones, paused keys, and when it was computed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from objects.models import Status
from tests.integration.admin_fixtures import invocation, operator, put  # noqa: F401  # operator: a fixture

pytestmark = pytest.mark.django_db


def recorder_row(client) -> dict:
    return {r["type_name"]: r for r in client.get(reverse("admin:objects_overview")).context["rows"]}["Recorder"]


def test_a_send_not_yet_due_is_scheduled_not_waiting(operator):  # noqa: F811
    a, b = put("a", n=1), put("b", n=1)
    invocation(a, not_before=timezone.now() + timedelta(hours=1), handler="expire")
    due = invocation(b)
    invocation(b, not_before=timezone.now() - timedelta(seconds=5))  # a delayed send now due waits
    response = operator.get(reverse("admin:objects_overview"))
    row = {r["type_name"]: r for r in response.context["rows"]}["Recorder"]
    assert (row["scheduled"], row["waiting"], row["running"]) == (1, 2, 0)
    assert row["oldest_waiting_age"] is not None
    body = response.content.decode()
    assert '<td class="scheduled">' in body and '<td class="waiting">' in body
    assert "pending" not in re.sub(r"status__exact=pending", "", body.split('id="overview"')[1]).split("</thead>")[0]
    assert due.pk


def test_the_oldest_waiting_age_ignores_sends_scheduled_for_later(operator):  # noqa: F811
    inst = put("a", n=1)
    old = invocation(inst, not_before=timezone.now() + timedelta(hours=1))
    old.__class__.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    row = recorder_row(operator)
    assert (row["scheduled"], row["waiting"], row["oldest_waiting_age"]) == (1, 0, None)


def test_paused_keys_are_counted_per_type_with_the_invocations_they_hold(operator):  # noqa: F811
    a, b = put("a", n=1), put("b", n=1)
    put("x", type_name="Other", n=1)
    a.__class__.objects.filter(pk=a.pk).update(paused=True, paused_reason="investigating")
    invocation(a)
    invocation(a)
    invocation(b)
    response = operator.get(reverse("admin:objects_overview"))
    rows = {r["type_name"]: r for r in response.context["rows"]}
    assert (rows["Recorder"]["paused"], rows["Recorder"]["held_by_pause"], rows["Recorder"]["waiting"]) == (1, 2, 1)
    assert (rows["Other"]["paused"], rows["Other"]["held_by_pause"]) == (0, 0)
    body = response.content.decode()
    assert "type_name__exact=Recorder&amp;paused__exact=1" in body


def test_the_overview_says_when_it_was_computed(operator):  # noqa: F811
    put("a", n=1)
    response = operator.get(reverse("admin:objects_overview"))
    as_of = response.context["as_of"]
    assert abs((timezone.now() - as_of).total_seconds()) < 60
    assert f"as of {as_of:%H:%M:%S} UTC" in response.content.decode()


def test_suspended_and_backing_off_are_not_waiting(operator):  # noqa: F811
    inst = put("a", n=1)
    invocation(inst, Status.SUSPENDED, not_before=timezone.now() + timedelta(hours=1))
    invocation(inst, Status.BACKING_OFF, not_before=timezone.now() + timedelta(seconds=30))
    row = recorder_row(operator)
    assert (row["scheduled"], row["waiting"], row["suspended"], row["backing_off"]) == (0, 0, 1, 1)


def test_the_invocation_list_filters_pending_by_queue(operator):  # noqa: F811
    a, b = put("a", n=1), put("b", n=1)
    b.__class__.objects.filter(pk=b.pk).update(paused=True)
    later = invocation(a, not_before=timezone.now() + timedelta(hours=1))
    due = invocation(a)
    held = invocation(b)
    url = reverse("admin:objects_invocation_changelist")
    for queue, expected in (("scheduled", later), ("waiting", due), ("paused", held)):
        listed = operator.get(url, {"queue": queue}).context["cl"].result_list
        assert [i.pk for i in listed] == [expected.pk], queue

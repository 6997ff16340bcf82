"""The done signal (objects/signals/notify.py) carries the committed outcome, so a waiting caller reads no row; a bare
signal (an operator's cancel or kill, a worker that could not encode the outcome) sends it to the database."""

from __future__ import annotations

import pytest

from objects.models import Instance, Invocation, Status
from objects.signals import doorbell, notify

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(redis_client):
    instance = Instance.objects.create(type_name="T", key="done-signal")
    invocation = Invocation.objects.create(instance=instance, type_name="T", key="done-signal", handler="h")
    redis_client.delete(notify.done_key(invocation.public_id))
    yield invocation
    redis_client.delete(notify.done_key(invocation.public_id))


def _finished(invocation: Invocation, **fields) -> Invocation:
    Invocation.objects.filter(pk=invocation.pk).update(**fields)
    done = Invocation.objects.get(pk=invocation.pk)
    return done


def test_the_outcome_travels_with_the_signal(pending, django_assert_num_queries):
    done = _finished(pending, status=Status.SUCCEEDED, output={"items": 3})
    notify.notify_done([done.public_id], {done.public_id: notify.outcome_text(done)})
    with django_assert_num_queries(0):
        got = doorbell.wait_done(pending, timeout=5)
    assert (got.status, got.output) == (Status.SUCCEEDED, {"items": 3})


def test_a_failure_travels_with_its_message_and_code(pending):
    done = _finished(pending, status=Status.FAILED, error_message="Out of stock", error_code=409, error_type="X")
    notify.notify_done([done.public_id], {done.public_id: notify.outcome_text(done)})
    got = doorbell.wait_done(pending, timeout=5)
    assert (got.status, got.error_message, got.error_code, got.error_type) == ("failed", "Out of stock", 409, "X")


def test_a_bare_signal_reads_the_database(pending, django_assert_num_queries):
    _finished(pending, status=Status.CANCELLED, error_message="Cancelled by an operator.")
    notify.notify_done([pending.public_id])
    with django_assert_num_queries(1):
        got = doorbell.wait_done(pending, timeout=5)
    assert got.status == Status.CANCELLED


def test_an_open_invocation_has_no_outcome_to_send(pending):
    assert notify.outcome_text(pending) is None


def test_an_output_from_the_signal_reads_like_one_from_the_row(pending):
    output = {"total_cents": 2499, "status": "open", "lines": [{"sku": "A", "quantity": 1, "name": "é"}], "ü": 1}
    Invocation.objects.filter(pk=pending.pk).update(status=Status.SUCCEEDED, output=output)
    from_row = Invocation.objects.get(pk=pending.pk)
    in_memory = Invocation.objects.get(pk=pending.pk)
    in_memory.output = output  # as the worker holds it: the handler's own key order
    notify.notify_done([pending.public_id], {pending.public_id: notify.outcome_text(in_memory)})
    from_signal = doorbell.wait_done(pending, timeout=5)
    assert list(from_signal.output) == list(from_row.output)
    assert list(from_signal.output["lines"][0]) == list(from_row.output["lines"][0])

"""`manage.py objects state ...` and `manage.py objects invocations ...` go through the admin's services: the
version check, the key's lock with its timeout, the admin log under a staff user with the permission."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import override_settings

from objects.models import Instance, Invocation, StateChange, StateEntry, Status
from objects.services import state_edit
from tests.support import key_row_held


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("objects", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def entries(type_name: str, key: str) -> dict:
    return dict(
        StateEntry.objects.filter(instance__type_name=type_name, instance__key=key).values_list("name", "value")
    )


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_superuser("ops", "ops@example.com", "pw")


@pytest.fixture
def cart(db) -> Instance:
    state_edit(type_name="Recorder", key="alice", expected_version=None, set_entries={"items": [1, 2], "n": 2})
    return Instance.objects.get(type_name="Recorder", key="alice")


def test_state_get_prints_the_entries_and_one_entry(cart):
    out, err = run("state", "get", "Recorder", "alice")
    assert json.loads(out) == {"items": [1, 2], "n": 2}
    assert "version 1" in err
    assert json.loads(run("state", "get", "Recorder", "alice", "items")[0]) == [1, 2]
    with pytest.raises(CommandError, match="no entry 'nope'"):
        run("state", "get", "Recorder", "alice", "nope")
    with pytest.raises(CommandError, match="No instance Recorder/bob"):
        run("state", "get", "Recorder", "bob")


def test_state_set_records_history_and_the_admin_log(cart, operator):
    out, _ = run("state", "set", "Recorder", "alice", "n", "5", "--user", "ops")
    assert "version 2" in out
    assert entries("Recorder", "alice")["n"] == 5
    change = StateChange.objects.filter(instance=cart, name="n").latest("id")
    assert (change.user_id, change.new_value) == (operator.pk, 5)
    log = LogEntry.objects.get()
    assert (log.user_id, log.object_id) == (operator.pk, str(cart.pk))
    assert "Set state entry 'n' (version 2" in log.change_message


def test_state_set_makes_a_new_key_of_a_registered_type_only(operator):
    run("state", "set", "Recorder", "new-key", "items", '["a"]', "--user", "ops")
    assert entries("Recorder", "new-key") == {"items": ["a"]}
    with pytest.raises(CommandError, match="No object type 'Typo'"):
        run("state", "set", "Typo", "k", "items", "[]", "--user", "ops")
    assert not Instance.objects.filter(type_name="Typo").exists()


def test_state_set_reads_the_value_from_standard_input(cart, operator, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"sku": "MUG", "quantity": 2}'))
    run("state", "set", "Recorder", "alice", "items", "-", "--user", "ops")
    assert entries("Recorder", "alice")["items"] == {"sku": "MUG", "quantity": 2}


def test_state_set_refuses_bad_json_and_a_stale_version(cart, operator):
    with pytest.raises(CommandError, match="Not valid JSON"):
        run("state", "set", "Recorder", "alice", "n", "five", "--user", "ops")
    with pytest.raises(CommandError, match="changed since you loaded it"):
        run("state", "set", "Recorder", "alice", "n", "7", "--user", "ops", "--expect-version", "0")
    run("state", "set", "Recorder", "alice", "n", "7", "--user", "ops", "--expect-version", "1")
    assert entries("Recorder", "alice")["n"] == 7
    assert LogEntry.objects.count() == 1


def test_state_clear_one_entry_and_all(cart, operator):
    run("state", "clear", "Recorder", "alice", "n", "--user", "ops")
    assert entries("Recorder", "alice") == {"items": [1, 2]}
    with pytest.raises(CommandError, match="no entry 'n'"):
        run("state", "clear", "Recorder", "alice", "n", "--user", "ops")
    run("state", "clear", "Recorder", "alice", "--user", "ops")
    assert entries("Recorder", "alice") == {}
    assert [e.change_message.split(" (")[0] for e in LogEntry.objects.order_by("id")] == [
        "Deleted state entry 'n'",
        "Cleared all state",
    ]


def test_writes_need_a_staff_user_with_the_permission(cart, db):
    User.objects.create_user("clerk", password="pw")
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_instance"))
    with pytest.raises(CommandError, match="no active staff user"):
        run("state", "set", "Recorder", "alice", "n", "1", "--user", "clerk")
    with pytest.raises(CommandError, match="objects.change_instance"):
        run("state", "set", "Recorder", "alice", "n", "1", "--user", "viewer")
    with pytest.raises(CommandError, match="--user"):
        run("state", "clear", "Recorder", "alice")
    assert entries("Recorder", "alice")["n"] == 2


@pytest.mark.django_db(transaction=True)
@override_settings(OBJECTS_LOCK_TIMEOUT_MS=300)
def test_state_set_gives_up_on_a_key_held_past_the_lock_timeout():
    User.objects.create_superuser("ops", "ops@example.com", "pw")
    state_edit(type_name="Recorder", key="busy", expected_version=None, set_entries={"n": 1})
    instance = Instance.objects.get(type_name="Recorder", key="busy")
    with key_row_held(instance.pk), pytest.raises(CommandError, match="is busy"):
        run("state", "set", "Recorder", "busy", "n", "2", "--user", "ops")
    assert entries("Recorder", "busy") == {"n": 1}
    assert not LogEntry.objects.exists()


def make_invocation(instance: Instance, status: str) -> Invocation:
    return Invocation.objects.create(
        instance=instance,
        type_name=instance.type_name,
        key=instance.key,
        handler="append",
        kind="exclusive",
        input={"value": 1},
        status=status,
    )


def test_retry_refuses_a_handlers_refusal_as_the_admin_and_api_do(cart, operator):
    refused = make_invocation(cart, Status.FAILED)
    Invocation.objects.filter(pk=refused.pk).update(error_code=409, error_message="Only 0 Tee left.")
    with pytest.raises(CommandError, match="Refused \\(1\\).*not retried: its handler refused it"):
        run("invocations", "retry", refused.public_id, "--user", "ops")
    refused.refresh_from_db()
    assert refused.status == Status.FAILED


def test_invocations_list_filters_newest_first(cart):
    older = make_invocation(cart, Status.FAILED)
    newer = make_invocation(cart, Status.PENDING)
    out, _ = run("invocations", "list", "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [newer.public_id, older.public_id]
    out, _ = run("invocations", "list", "--status", "failed")
    assert older.public_id in out and newer.public_id not in out
    assert run("invocations", "list", "--key", "nobody")[0] == ""


def test_invocations_cancel_kill_retry_go_through_the_services(cart, operator):
    pending, failed, done = (make_invocation(cart, s) for s in (Status.PENDING, Status.FAILED, Status.SUCCEEDED))
    out, _ = run("invocations", "cancel", pending.public_id, "--user", "ops")
    assert f"{pending.public_id}: cancelled" in out
    run("invocations", "retry", failed.public_id, "--user", "ops")
    failed.refresh_from_db()
    assert failed.status == Status.PENDING
    with pytest.raises(CommandError, match="Refused \\(1\\).*succeeded"):
        run("invocations", "kill", done.public_id, "--user", "ops")
    with pytest.raises(CommandError, match="No invocation 'inv_nope'"):
        run("invocations", "cancel", "inv_nope", "--user", "ops")
    assert [e.change_message for e in LogEntry.objects.order_by("id")] == [
        "Cancel: now cancelled (manage.py objects).",
        "Retry: now pending (manage.py objects).",
    ]

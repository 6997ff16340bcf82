"""The admin for virtual objects: inspection, version-checked edits, actions, permissions and the admin log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import objects
from objects.models import Instance, Invocation, JournalEntry, StateChange, StateEntry, Status
from objects.services import state_edit
from objects.signals.doorbell import wait_done
from tests.support import key_row_held

CHANGELIST = "/admin/objects/instance/"
INVOCATIONS = "/admin/objects/invocation/"


def put(key: str, type_name: str = "Recorder", **entries) -> Instance:
    instance = Instance.objects.filter(type_name=type_name, key=key).first()
    state_edit(
        type_name=type_name,
        key=key,
        expected_version=instance.version if instance else None,
        set_entries=entries,
    )
    return Instance.objects.get(type_name=type_name, key=key)


def invocation(instance: Instance, status: str = Status.PENDING, handler: str = "append", **fields) -> Invocation:
    return Invocation.objects.create(
        instance=instance,
        type_name=instance.type_name,
        key=instance.key,
        handler=handler,
        kind="exclusive",
        input={"value": 1},
        status=status,
        **fields,
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def entries(instance: Instance) -> dict:
    return dict(StateEntry.objects.filter(instance=instance).values_list("name", "value"))


@pytest.fixture
def admin_client_(db) -> Client:
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def viewer(db) -> Client:
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="objects", codename__in=["view_instance", "view_invocation"])
    )
    client = Client()
    client.force_login(user)
    return client


# Lists ---------------------------------------------------------------------------------------------


def test_instance_list_shows_entries_size_and_inbox_in_constant_queries(admin_client_, django_assert_max_num_queries):
    for i in range(12):
        inst = put(f"user{i}", items=[1, 2, 3], total=6)
        invocation(inst)
        invocation(inst, Status.BACKING_OFF)
        invocation(inst, Status.SUCCEEDED)
    with django_assert_max_num_queries(12):
        response = admin_client_.get(CHANGELIST)
    assert response.status_code == 200
    row = next(r for r in response.context["cl"].result_list if r.key == "user3")
    assert (row.entry_count, row.inbox_depth) == (2, 2)
    assert row.state_size == len(b"[1,2,3]") + len(b"6")


def test_instance_search_by_contains_and_by_prefix(admin_client_):
    for key in ("alice", "malice", "bob"):
        put(key, n=1)
    contains = admin_client_.get(CHANGELIST, {"q": "lice"}).context["cl"].result_list
    prefix = admin_client_.get(CHANGELIST, {"q": "^ali"}).context["cl"].result_list
    assert sorted(i.key for i in contains) == ["alice", "malice"]
    assert [i.key for i in prefix] == ["alice"]


def test_instance_list_filters_by_type(admin_client_):
    put("k", type_name="Recorder", n=1)
    put("k", type_name="Other", n=1)
    result = admin_client_.get(CHANGELIST, {"type_name__exact": "Other"}).context["cl"].result_list
    assert [(i.type_name, i.key) for i in result] == [("Other", "k")]


# The instance page ------------------------------------------------------------------------------------


def test_instance_page_shows_highlighted_state_inbox_recent_invocations_and_history(admin_client_):
    inst = put("cart1", items=[{"sku": "tea"}])
    put("cart1", items=[{"sku": "tea"}, {"sku": "jam"}])
    old = invocation(inst, Status.SUCCEEDED)
    first, second = invocation(inst), invocation(inst, Status.BACKING_OFF)
    body = admin_client_.get(reverse("admin:objects_instance_change", args=[inst.pk])).content.decode()
    assert '<div class="highlight"' in body and "style=" in body and "jam" in body
    inbox = body.split('id="inbox"')[1].split('id="recent-invocations"')[0]
    assert first.public_id in inbox and second.public_id in inbox and old.public_id not in inbox
    assert inbox.index(first.public_id) < inbox.index(second.public_id)
    recent = body.split('id="recent-invocations"')[1].split('id="state-history"')[0]
    assert old.public_id in recent
    history = body.split('id="state-history"')[1]
    assert history.count("restore this version") == 2


def test_a_handlers_change_stores_only_its_new_value_and_history_shows_the_old_one(admin_client_):
    from objects.selectors import instance_history

    inst = put("hist", balance=1)
    put("hist", balance=2)
    state_edit(type_name="Recorder", key="hist", expected_version=None, clear=["balance"])
    put("hist", balance=3)
    put("hist", balance=4)
    stored = list(StateChange.objects.filter(instance=inst).order_by("id").values_list("action", "old_value"))
    assert stored == [("set", None), ("set", None), ("clear", 2), ("set", None), ("set", None)]
    shown = [(c.action, c.old_value, c.new_value) for c in instance_history(instance=inst)]
    assert shown == [("set", 3, 4), ("set", None, 3), ("clear", 2, None), ("set", 1, 2), ("set", None, 1)]
    assert [c.old_value for c in instance_history(instance=inst, limit=1)] == [3]  # found beyond the page
    body = admin_client_.get(reverse("admin:objects_instance_change", args=[inst.pk])).content.decode()
    history = body.split('id="state-history"')[1]
    assert history.index(">3<") < history.index(">4<")  # the newest row shows 3 → 4


@pytest.mark.django_db(transaction=True)
def test_inbox_marks_the_head_running_while_the_key_is_held():
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    inst = put("busy", n=1)
    head, queued = invocation(inst), invocation(inst)
    with key_row_held(inst.pk):
        held = client.get(reverse("admin:objects_instance_change", args=[inst.pk])).context["inbox"]
        overview = {r["type_name"]: r for r in client.get(reverse("admin:objects_overview")).context["rows"]}
    free = client.get(reverse("admin:objects_instance_change", args=[inst.pk])).context["inbox"]
    assert [(row.invocation.pk, row.running) for row in held] == [(head.pk, True), (queued.pk, False)]
    assert [row.running for row in free] == [False, False]
    assert (overview["Recorder"]["running"], overview["Recorder"]["waiting"]) == (1, 1)


# Edits ----------------------------------------------------------------------------------------------


def test_edit_entry_sets_validated_json_records_the_user_and_logs_it(admin_client_):
    inst = put("w", balance=10)
    url = reverse("admin:objects_instance_entry_edit", args=[inst.pk]) + "?name=balance"
    form = admin_client_.get(url)
    assert form.context["form"].initial == {"name": "balance", "value": "10", "version": inst.version}
    response = admin_client_.post(url, {"name": "balance", "value": '{"eur": 25}', "version": inst.version})
    assert response.status_code == 302
    assert entries(inst) == {"balance": {"eur": 25}}
    change = StateChange.objects.filter(instance=inst).first()
    assert (change.name, change.old_value, change.new_value, change.user_id) == (
        "balance",
        10,
        {"eur": 25},
        admin_client_.user.pk,
    )
    assert LogEntry.objects.filter(object_id=str(inst.pk), change_message__contains="balance").exists()


def test_invalid_json_is_refused_with_the_parse_error(admin_client_):
    inst = put("w", balance=10)
    url = reverse("admin:objects_instance_entry_edit", args=[inst.pk]) + "?name=balance"
    response = admin_client_.post(url, {"name": "balance", "value": "{'eur': 25", "version": inst.version})
    assert response.status_code == 400
    assert "Not valid JSON: Expecting property name enclosed in double quotes" in response.content.decode()
    assert entries(inst) == {"balance": 10}


def test_edit_is_refused_when_the_version_changed_after_the_operator_loaded_it(admin_client_):
    inst = put("w", balance=10)
    url = reverse("admin:objects_instance_entry_edit", args=[inst.pk]) + "?name=balance"
    seen = admin_client_.get(url).context["form"].initial["version"]
    put("w", balance=11)  # an invocation committed in between
    response = admin_client_.post(url, {"name": "balance", "value": "99", "version": seen})
    assert response.status_code == 409
    assert any("changed since you loaded it" in m for m in messages_of(response))
    assert entries(inst) == {"balance": 11}


def test_delete_entry_after_confirmation(admin_client_):
    inst = put("w", balance=10, note="x")
    url = reverse("admin:objects_instance_entry_delete", args=[inst.pk]) + "?name=note"
    assert "Yes, delete it" in admin_client_.get(url).content.decode()
    admin_client_.post(url, {"version": inst.version})
    assert entries(inst) == {"balance": 10}
    assert StateChange.objects.filter(instance=inst, name="note", action="clear").exists()


def test_restore_from_history_applies_an_edit_recorded_in_turn(admin_client_):
    inst = put("w", balance=10)
    inst = put("w", balance=0)
    set_to_ten = StateChange.objects.get(instance=inst, name="balance", new_value=10)
    url = reverse("admin:objects_instance_restore", args=[inst.pk, set_to_ten.pk])
    response = admin_client_.post(url, {"version": inst.version}, follow=True)
    assert entries(inst) == {"balance": 10}
    newest = StateChange.objects.filter(instance=inst).first()
    assert (newest.old_value, newest.new_value, newest.user_id) == (0, 10, admin_client_.user.pk)
    assert any("Restored 'balance'" in m for m in messages_of(response))


def test_restore_is_refused_when_the_version_is_stale(admin_client_):
    inst = put("w", balance=10)
    seen = put("w", balance=0).version
    put("w", balance=5)
    change = StateChange.objects.get(instance=inst, new_value=10)
    url = reverse("admin:objects_instance_restore", args=[inst.pk, change.pk])
    response = admin_client_.post(url, {"version": seen}, follow=True)
    assert entries(inst) == {"balance": 5}
    assert any("reload and retry" in m for m in messages_of(response))


def test_clear_all_confirmation_says_how_many_entries_go_then_clears(admin_client_):
    a, b, untouched = put("a", x=1, y=2, z=3), put("b", x=1, y=2), put("c", x=1)
    selected = {"action": "clear_all_state", "_selected_action": [a.pk, b.pk]}
    page = admin_client_.post(CHANGELIST, selected)
    assert page.status_code == 200 and "5 entries will go" in page.content.decode()
    assert entries(a) and entries(b)
    response = admin_client_.post(
        CHANGELIST,
        {**selected, "post": "yes", f"version_{a.pk}": a.version, f"version_{b.pk}": b.version},
        follow=True,
    )
    assert entries(a) == {} and entries(b) == {} and entries(untouched) == {"x": 1}
    assert "Cleared all state of 2 instance(s): 5 entries removed." in messages_of(response)
    assert LogEntry.objects.filter(change_message__contains="Cleared all state").count() == 2


def test_bulk_clear_reports_an_instance_changed_since_confirmation_and_leaves_it(admin_client_):
    a, b = put("a", x=1), put("b", x=1)
    put("b", x=2)  # changed after the confirmation page showed b.version
    response = admin_client_.post(
        CHANGELIST,
        {
            "action": "clear_all_state",
            "_selected_action": [a.pk, b.pk],
            "post": "yes",
            f"version_{a.pk}": a.version,
            f"version_{b.pk}": b.version,
        },
        follow=True,
    )
    assert entries(a) == {} and entries(b) == {"x": 2}
    text = " ".join(messages_of(response))
    assert "Cleared all state of 1 instance(s): 1 entry removed." in text
    assert "Not cleared (1)" in text and "Recorder/b changed since you loaded it" in text


def test_clear_all_button_on_the_instance_page_leads_to_the_confirmation(admin_client_):
    inst = put("cart", items=[1])
    body = admin_client_.get(reverse("admin:objects_instance_change", args=[inst.pk])).content.decode()
    assert 'value="clear_all_state"' in body
    page = admin_client_.post(CHANGELIST, {"action": "clear_all_state", "_selected_action": [inst.pk]})
    assert "1 entry will go" in page.content.decode()


def test_pause_with_reason_then_resume(admin_client_):
    a, b = put("a", x=1), put("b", x=1)
    selected = {"action": "pause_keys", "_selected_action": [a.pk, b.pk]}
    assert "Reason" in admin_client_.post(CHANGELIST, selected).content.decode()
    response = admin_client_.post(CHANGELIST, {**selected, "post": "yes", "reason": "investigating"}, follow=True)
    assert "Paused 2 key(s): investigating." in messages_of(response)
    assert (
        list(Instance.objects.filter(pk__in=[a.pk, b.pk]).values_list("paused", "paused_reason"))
        == [(True, "investigating")] * 2
    )
    page = admin_client_.get(reverse("admin:objects_instance_change", args=[a.pk])).content.decode()
    assert "Paused:</strong> investigating" in page
    response = admin_client_.post(CHANGELIST, {"action": "resume_keys", "_selected_action": [a.pk]}, follow=True)
    assert "Resumed 1 key(s)." in messages_of(response)
    assert Instance.objects.get(pk=a.pk).paused is False and Instance.objects.get(pk=b.pk).paused is True
    assert LogEntry.objects.filter(object_id=str(a.pk)).count() == 2


# Invocations ----------------------------------------------------------------------------------------


def test_invocation_list_filters_and_searches_by_public_id_and_key(admin_client_):
    inst = put("k1", n=1)
    pending, failed = invocation(inst), invocation(inst, Status.FAILED)
    other = invocation(put("zz", n=1), Status.FAILED)
    by_status = admin_client_.get(INVOCATIONS, {"status__exact": "failed"}).context["cl"].result_list
    assert {i.pk for i in by_status} == {failed.pk, other.pk}
    by_id = admin_client_.get(INVOCATIONS, {"q": pending.public_id}).context["cl"].result_list
    assert [i.pk for i in by_id] == [pending.pk]
    by_key = admin_client_.get(INVOCATIONS, {"q": "k1"}).context["cl"].result_list
    assert {i.pk for i in by_key} == {pending.pk, failed.pk}
    by_handler = admin_client_.get(INVOCATIONS, {"handler__exact": "append"}).context["cl"].result_list
    assert len(by_handler) == 3


def test_invocation_detail_shows_error_journal_and_caller_chain_read_only(admin_client_):
    inst = put("k", n=1)
    root = invocation(inst, Status.SUCCEEDED, handler="checkout")
    middle = invocation(inst, Status.SUCCEEDED, handler="reserve", caller=root)
    leaf = invocation(
        inst,
        Status.BACKING_OFF,
        caller=middle,
        attempts=3,
        not_before=timezone.now() + timedelta(seconds=30),
        error_message="transient failure 3",
        error_traceback="Traceback (most recent call last):\nRuntimeError: transient failure 3",
    )
    JournalEntry.objects.create(invocation=leaf, index=0, name="charge card", result={"charge": "ch_1"})
    url = reverse("admin:objects_invocation_change", args=[leaf.pk])
    body = admin_client_.get(url).content.decode()
    for text in ("transient failure 3", "RuntimeError", "charge card", "ch_1", root.public_id, middle.public_id):
        assert text in body
    assert body.index(middle.public_id) < body.index(root.public_id)
    assert 'name="_save"' not in body
    assert admin_client_.post(url, {"status": "succeeded"}).status_code == 403
    assert Invocation.objects.get(pk=leaf.pk).status == Status.BACKING_OFF


def test_cancel_action_confirms_then_cancels_and_counts_refusals(admin_client_):
    inst = put("k", n=1)
    pending, backing, done = invocation(inst), invocation(inst, Status.BACKING_OFF), invocation(inst, "succeeded")
    selected = {"action": "cancel_invocations", "_selected_action": [pending.pk, backing.pk, done.pk]}
    assert "Yes, cancel" in admin_client_.post(INVOCATIONS, selected).content.decode()
    response = admin_client_.post(INVOCATIONS, {**selected, "post": "yes"}, follow=True)
    statuses = dict(Invocation.objects.values_list("pk", "status"))
    assert (statuses[pending.pk], statuses[backing.pk], statuses[done.pk]) == ("cancelled", "cancelled", "succeeded")
    text = " ".join(messages_of(response))
    assert "Cancel: 2 invocation(s)." in text and "Refused (1)" in text
    assert LogEntry.objects.filter(change_message__startswith="Cancel").count() == 2


def test_retry_action_puts_a_failed_invocation_back_in_the_inbox(admin_client_):
    failed = invocation(put("k", n=1), Status.FAILED, attempts=10, finished_at=timezone.now())
    admin_client_.post(INVOCATIONS, {"action": "retry_invocations", "_selected_action": [failed.pk], "post": "yes"})
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.finished_at) == ("pending", 0, None)


def test_kill_action_kills_an_invocation_no_worker_holds(admin_client_):
    pending = invocation(put("k", n=1))
    done = invocation(put("k2", n=1), Status.SUCCEEDED)
    selected = {"action": "kill_invocations", "_selected_action": [pending.pk, done.pk], "post": "yes"}
    response = admin_client_.post(INVOCATIONS, selected, follow=True)
    assert Invocation.objects.get(pk=pending.pk).status == "killed"
    assert "Kill: 1 invocation(s)." in " ".join(messages_of(response))


@pytest.mark.workers
def test_kill_action_discards_the_effects_of_a_running_invocation(live, redis_client):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    public_id = objects.send("Recorder", "slow", "hold", {"release": "admin-kill"})
    assert redis_client.blpop(["entered:slow"], timeout=30)
    running = Invocation.objects.get(uid=public_id.removeprefix("inv_"))
    page = client.get(reverse("admin:objects_instance_change", args=[running.instance_id]))
    assert [(row.invocation.pk, row.running) for row in page.context["inbox"]] == [(running.pk, True)]
    selected = {"action": "kill_invocations", "_selected_action": [running.pk], "post": "yes"}
    response = client.post(INVOCATIONS, selected, follow=True)
    assert "Kill: 1 invocation(s)." in messages_of(response)
    redis_client.rpush("release:admin-kill", 1)
    assert wait_done(running, 30).status == Status.KILLED
    assert entries(running.instance) == {}


# Overview -------------------------------------------------------------------------------------------


def test_overview_counts_per_type_and_links_into_filtered_lists(admin_client_):
    a, b = put("a", n=1), put("b", n=1)
    put("x", type_name="Other", n=1)
    old = invocation(a)
    Invocation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    invocation(b)
    invocation(a, Status.BACKING_OFF)
    invocation(b, Status.FAILED)
    invocation(b, Status.SUCCEEDED)
    response = admin_client_.get(reverse("admin:objects_overview"))
    rows = {r["type_name"]: r for r in response.context["rows"]}
    recorder = rows["Recorder"]
    assert (recorder["instances"], recorder["waiting"], recorder["running"]) == (2, 2, 0)
    assert (recorder["backing_off"], recorder["failed"]) == (1, 1)
    assert recorder["oldest_waiting_age"] >= timedelta(minutes=5)
    assert recorder["oldest_waiting_text"] == "5m"
    assert (rows["Other"]["instances"], rows["Other"]["waiting"], rows["Other"]["oldest_waiting_age"]) == (1, 0, None)
    assert f"{INVOCATIONS}?type_name__exact=Recorder&amp;status__exact=failed" in response.content.decode()


def test_the_app_index_and_the_instance_list_link_to_the_overview(admin_client_):
    overview = reverse("admin:objects_overview")
    assert overview in admin_client_.get(reverse("admin:app_list", args=["objects"])).content.decode()
    assert overview in admin_client_.get(CHANGELIST).content.decode()


def test_the_admin_templates_and_styles_come_from_the_app(admin_client_):
    """A host gets the admin pages from the installed app alone: its templates and static files live in objects/."""
    from pathlib import Path

    from django.contrib.staticfiles import finders
    from django.template.loader import get_template

    app = Path(objects.__file__).parent
    for name in (
        "admin/objects/overview.html",
        "admin/objects/instance/change_form.html",
        "admin/objects/app_index.html",
    ):
        assert Path(get_template(name).origin.name).is_relative_to(app / "templates"), name
    assert Path(finders.find("objects/admin.css")).is_relative_to(app / "static")
    page = admin_client_.get(reverse("admin:objects_instance_change", args=[put("css", n=1).pk])).content.decode()
    assert "objects/admin.css" in page and "<style>" not in page


def test_the_site_index_stays_the_hosts(admin_client_):
    """The app brings its own admin section; the site-wide index page is the host's to choose."""
    from django.contrib import admin

    assert admin.site.index_template is None
    response = admin_client_.get("/admin/")
    assert [t.name for t in response.templates][0] == "admin/index.html"


# Permissions ----------------------------------------------------------------------------------------


def test_view_only_staff_can_inspect_but_not_edit_clear_pause_or_cancel(viewer):
    inst = put("w", balance=10)
    pending = invocation(inst)
    change = StateChange.objects.get(instance=inst)
    page = viewer.get(reverse("admin:objects_instance_change", args=[inst.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and "balance" in body
    assert "clear_all_state" not in body and "restore this version" not in body and "state/edit" not in body
    assert viewer.get(INVOCATIONS).status_code == 200
    assert viewer.get(reverse("admin:objects_overview")).status_code == 200
    edit = reverse("admin:objects_instance_entry_edit", args=[inst.pk]) + "?name=balance"
    assert viewer.get(edit).status_code == 403
    assert viewer.post(edit, {"name": "balance", "value": "0", "version": inst.version}).status_code == 403
    delete = reverse("admin:objects_instance_entry_delete", args=[inst.pk]) + "?name=balance"
    assert viewer.post(delete, {"version": inst.version}).status_code == 403
    restore = reverse("admin:objects_instance_restore", args=[inst.pk, change.pk])
    assert viewer.post(restore, {"version": inst.version}).status_code == 403
    for action in ("clear_all_state", "pause_keys"):
        viewer.post(
            CHANGELIST, {"action": action, "_selected_action": [inst.pk], "post": "yes", f"version_{inst.pk}": 1}
        )
    viewer.post(INVOCATIONS, {"action": "cancel_invocations", "_selected_action": [pending.pk], "post": "yes"})
    assert entries(inst) == {"balance": 10}
    assert Instance.objects.get(pk=inst.pk).paused is False
    assert Invocation.objects.get(pk=pending.pk).status == "pending"
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("who", ["anonymous", "non-staff"])
def test_anonymous_and_non_staff_are_sent_to_the_admin_login(db, who):
    client = Client()
    if who == "non-staff":
        client.force_login(User.objects.create_user("shopper", password="pw"))
    inst = put("w", balance=10)
    for url in (
        CHANGELIST,
        reverse("admin:objects_instance_change", args=[inst.pk]),
        reverse("admin:objects_overview"),
        reverse("admin:objects_instance_entry_edit", args=[inst.pk]),
        INVOCATIONS,
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    client.post(CHANGELIST, {"action": "clear_all_state", "_selected_action": [inst.pk], "post": "yes"})
    assert entries(inst) == {"balance": 10}

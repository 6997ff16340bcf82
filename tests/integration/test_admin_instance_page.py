"""The admin's instance page: history in pages of versions with a diff per change, and actions that return
to the page they started from."""

from __future__ import annotations

import pytest
from django.urls import reverse

from objects.admin.diffing import value_diff
from objects.models import Instance, Invocation, Status
from tests.integration.admin_fixtures import invocation, messages_of, operator, put  # noqa: F401  # a fixture

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/objects/instance/"
INVOCATIONS = "/admin/objects/invocation/"


def page_of(client, inst: Instance, **params) -> str:
    return client.get(reverse("admin:objects_instance_change", args=[inst.pk]), params).content.decode()


def history_of(body: str) -> str:
    return body.split('id="state-history"')[1]


# History: pages and diffs ------------------------------------------------------------------------------


def test_history_shows_twenty_versions_a_page_with_page_links(operator):  # noqa: F811
    inst = None
    for n in range(1, 46):
        inst = put("many", n=n, m=n)  # two entries change in each version
    response = operator.get(reverse("admin:objects_instance_change", args=[inst.pk]))
    page = response.context["history_page"]
    assert [v for v, _ in page.object_list][:2] == [45, 44] and len(page.object_list) == 20
    assert page.paginator.num_pages == 3
    history = history_of(response.content.decode())
    assert history.count('class="vo-version"') == 20
    assert "?history=2#state-history" in history and "?history=3#state-history" in history
    last = operator.get(reverse("admin:objects_instance_change", args=[inst.pk]), {"history": 3})
    assert [v for v, _ in last.context["history_page"].object_list] == [5, 4, 3, 2, 1]
    assert operator.get(reverse("admin:objects_instance_change", args=[inst.pk]), {"history": "x"}).status_code == 200


def test_each_change_shows_a_diff_against_the_previous_value(operator):  # noqa: F811
    inst = put("cart", lines=[{"sku": "TEE", "quantity": 1}], note="gift", old="x")
    inst = put("cart", lines=[{"sku": "TEE", "quantity": 3}, {"sku": "MUG", "quantity": 1}], note="gift")
    history = history_of(page_of(operator, inst))
    newest = history.split('class="vo-version"')[1]
    assert "lines[0].quantity" in newest and "<del>1</del>" in newest and "<ins>3</ins>" in newest
    assert "lines[1]" in newest and "added" in newest and "MUG" in newest


def test_value_diff_lists_added_removed_and_changed_keys_with_shortened_values():
    old = {"a": 1, "b": "x" * 200, "gone": True, "nested": {"k": [1, 2]}}
    new = {"a": 2, "b": "y" * 200, "new": None, "nested": {"k": [1, 2, 3]}}
    rows = {(row.op, row.path): row for row in value_diff(old, new)}
    assert set(rows) == {
        ("changed", "a"),
        ("changed", "b"),
        ("removed", "gone"),
        ("added", "new"),
        ("added", "nested.k[2]"),
    }
    assert len(rows[("changed", "b")].new) <= 60 and rows[("changed", "b")].new.endswith("…")
    assert value_diff(5, 5) == []
    assert [(r.op, r.path, r.old, r.new) for r in value_diff(None, {"a": 1})] == [("set", "", "", '{"a": 1}')]
    assert [(r.op, r.old, r.new) for r in value_diff("a", "b")] == [("changed", '"a"', '"b"')]


# Actions return to the page they started from ----------------------------------------------------------


def test_pause_and_resume_from_the_instance_page_return_to_it(operator):  # noqa: F811
    inst = put("k", n=1)
    here = reverse("admin:objects_instance_change", args=[inst.pk])
    body = page_of(operator, inst)
    assert f'name="next" value="{here}"' in body
    selected = {"action": "pause_keys", "_selected_action": [inst.pk], "next": here}
    confirm = operator.post(CHANGELIST, selected).content.decode()
    assert f'name="next" value="{here}"' in confirm
    response = operator.post(CHANGELIST, {**selected, "post": "yes", "reason": "look"})
    assert (response.status_code, response["Location"]) == (302, here)
    assert Instance.objects.get(pk=inst.pk).paused
    response = operator.post(CHANGELIST, {"action": "resume_keys", "_selected_action": [inst.pk], "next": here})
    assert (response.status_code, response["Location"]) == (302, here)
    assert not Instance.objects.get(pk=inst.pk).paused


def test_clear_all_from_the_instance_page_returns_to_it(operator):  # noqa: F811
    inst = put("k", n=1, m=2)
    here = reverse("admin:objects_instance_change", args=[inst.pk])
    selected = {"action": "clear_all_state", "_selected_action": [inst.pk], "next": here}
    assert f'name="next" value="{here}"' in operator.post(CHANGELIST, selected).content.decode()
    response = operator.post(CHANGELIST, {**selected, "post": "yes", f"version_{inst.pk}": inst.version}, follow=True)
    assert response.redirect_chain == [(here, 302)]
    assert "Cleared all state of 1 instance(s): 2 entries removed." in messages_of(response)


def test_an_action_from_the_list_stays_on_the_list_and_a_foreign_next_is_ignored(operator):  # noqa: F811
    inst = put("k", n=1)
    response = operator.post(CHANGELIST, {"action": "resume_keys", "_selected_action": [inst.pk]})
    assert response["Location"] == CHANGELIST
    response = operator.post(
        CHANGELIST, {"action": "resume_keys", "_selected_action": [inst.pk], "next": "https://evil.example/"}
    )
    assert response["Location"] == CHANGELIST


def test_invocation_actions_from_its_page_return_to_it(operator):  # noqa: F811
    inv = invocation(put("k", n=1))
    here = reverse("admin:objects_invocation_change", args=[inv.pk])
    assert f'name="next" value="{here}"' in operator.get(here).content.decode()
    selected = {"action": "cancel_invocations", "_selected_action": [inv.pk], "next": here}
    assert f'name="next" value="{here}"' in operator.post(INVOCATIONS, selected).content.decode()
    response = operator.post(INVOCATIONS, {**selected, "post": "yes"})
    assert (response.status_code, response["Location"]) == (302, here)
    assert Invocation.objects.get(pk=inv.pk).status == Status.CANCELLED

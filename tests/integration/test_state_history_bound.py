"""The state history is bounded: a type may keep none (`VirtualObject(..., state_history=False)`), and a key keeps
its last OBJECTS_STATE_HISTORY_PER_KEY versions, older ones deleted by the statement that writes a new one (real
workers, PostgreSQL). Also the write amplification of the benchmark's workload a, printed with `-s`."""

from __future__ import annotations

import time
import uuid

import pytest
from django.contrib.auth.models import User
from django.db import connection

import objects
from bench.loadgen import WORKLOADS, item_body
from objects.conf import DEFAULTS
from objects.models import Instance, StateChange
from objects.services import state_edit

pytestmark = pytest.mark.workers
KEPT = DEFAULTS["OBJECTS_STATE_HISTORY_PER_KEY"]  # the workers run with the default


def history_of(type_name: str, key: str) -> list[StateChange]:
    return list(StateChange.objects.filter(instance__type_name=type_name, instance__key=key).order_by("version"))


def test_a_key_keeps_its_last_versions_and_the_oldest_go_as_new_ones_come(live):
    for seq in range(KEPT + 12):
        assert objects.call("HistoryCart", "capped", "add_item", item_body(seq)) == seq + 1
    kept = history_of("HistoryCart", "capped")
    assert [change.version for change in kept] == list(range(13, KEPT + 13))  # the newest KEPT, in order
    assert kept[-1].new_value == [item_body(seq) for seq in range(KEPT + 12)]


def test_a_called_keys_history_is_bounded_too(live):
    """ctx.call writes the callee's state inside the caller's transaction (StateCache.flush)."""
    for seq in range(KEPT + 5):
        objects.call("HistoryCart", "caller", "add_to", {"key": "callee", "item": seq})
    assert [change.version for change in history_of("HistoryCart", "callee")] == list(range(6, KEPT + 6))


def test_an_operators_edits_are_kept_beyond_the_bound(live):
    staff = User.objects.create_user("editor", is_staff=True)
    objects.call("HistoryCart", "edited", "add_item", 0)
    state_edit(type_name="HistoryCart", key="edited", expected_version=1, set_entries={"note": "x"}, user_id=staff.pk)
    for seq in range(KEPT + 3):
        objects.call("HistoryCart", "edited", "add_item", seq)
    kept = history_of("HistoryCart", "edited")
    assert len(kept) == KEPT + 1
    assert (kept[0].version, kept[0].user_id, kept[0].new_value) == (2, staff.pk, "x")


def test_a_type_without_history_writes_none_but_an_operators_edit_is_recorded(live):
    for seq in range(5):
        assert objects.call("QuietCart", "quiet", "add_item", item_body(seq)) == seq + 1
    assert history_of("QuietCart", "quiet") == []
    assert Instance.objects.get(type_name="QuietCart", key="quiet").version == 5  # versions still move
    staff = User.objects.create_user("auditor", is_staff=True)
    state_edit(type_name="QuietCart", key="quiet", expected_version=5, clear=["items"], user_id=staff.pk)
    assert [(c.action, c.user_id) for c in history_of("QuietCart", "quiet")] == [("clear", staff.pk)]


def measure(type_name: str, calls: int) -> dict[str, float]:
    """Workload a's shape (one key, `calls` sequential calls appending the benchmark's item) on `type_name`."""
    key = f"a-{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # so that full-page images weigh the same in every run's WAL
        cursor.execute("SELECT pg_current_wal_lsn()")
        (start_lsn,) = cursor.fetchone()
    started = time.perf_counter()
    for seq in range(calls):
        assert objects.call(type_name, key, "add_item", item_body(seq)) == seq + 1
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [start_lsn])
        (wal,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), coalesce(sum(pg_column_size(h.new_value)), 0) FROM objects_statechange h "
            "JOIN objects_instance k ON k.id = h.instance_id WHERE k.type_name = %s AND k.key = %s",
            [type_name, key],
        )
        rows, kept_bytes = cursor.fetchone()
        # what each call's history row held: the list as it stood after the call, stored (compressed) as a row would
        cursor.execute(
            "SELECT coalesce(sum(pg_column_size(v)), 0) FROM (SELECT jsonb_path_query_array(e.value::jsonb, "
            "('$[0 to ' || n || ']')::jsonpath)::json AS v FROM objects_stateentry e JOIN objects_instance k "
            "ON k.id = e.instance_id, generate_series(0, %s - 1) n "
            "WHERE k.type_name = %s AND k.key = %s AND e.name = 'items') x",
            [calls, type_name, key],
        )
        (each_value,) = cursor.fetchone()
    return {
        "rows": rows,
        "kept_bytes": int(kept_bytes),
        "values_bytes_per_call": int(each_value) / calls,
        "wal_bytes_per_call": float(wal) / calls,
        "ms_per_call": elapsed * 1000 / calls,
    }


def test_workload_a_writes_history_only_where_kept_and_keeps_a_bounded_amount(live):
    calls = WORKLOADS["a"].calls
    figures = {name: measure(name, calls) for name in ("HistoryCart", "QuietCart")}
    for name, found in figures.items():
        print(
            f"\n{name}: {calls} calls, history rows kept {found['rows']}, their values {found['kept_bytes']:,} B; "
            f"values (uncompressed) {found['values_bytes_per_call']:,.0f} B per call; "
            f"WAL {found['wal_bytes_per_call']:,.0f} B per call; {found['ms_per_call']:.2f} ms per call"
        )
    assert figures["HistoryCart"]["rows"] == KEPT
    assert figures["QuietCart"]["rows"] == 0
    assert figures["QuietCart"]["wal_bytes_per_call"] < figures["HistoryCart"]["wal_bytes_per_call"]

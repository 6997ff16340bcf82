"""Routing is a stable function of (type, key): the same partition in every process and every run."""

import subprocess
import sys

from objects.routing import partition_of, queue_name


def test_partition_is_stable_across_processes():
    code = "from objects.routing import partition_of; print(partition_of('ShoppingCart', 'user123', 8))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin"},
            cwd=".",
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert outputs == {str(partition_of("ShoppingCart", "user123", 8))}


def test_known_values_never_change():
    # Changing these re-maps every key to another queue: a deployment hazard, so they are pinned.
    assert [partition_of("ShoppingCart", k, 8) for k in ("user123", "alice", "ключ", "a/b")] == [1, 3, 4, 7]


def test_keys_spread_over_all_partitions():
    seen = {partition_of("Cart", f"user{i}", 8) for i in range(200)}
    assert seen == set(range(8))


def test_type_is_part_of_the_route():
    assert any(partition_of("A", f"k{i}", 8) != partition_of("B", f"k{i}", 8) for i in range(20))


def test_queue_names():
    assert queue_name(3) == "objects.p3"

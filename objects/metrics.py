"""Prometheus metrics of this process (sweeper actions); DB-derived gauges are collected at scrape time."""

from __future__ import annotations

from prometheus_client import Counter

SWEEPER_ACTIONS = Counter("objects_sweeper_actions_total", "Actions taken by the sweeper.", ["action"])


def record_sweep(counts: dict[str, int]) -> None:
    for action, count in counts.items():
        if count:
            SWEEPER_ACTIONS.labels(action=action).inc(count)

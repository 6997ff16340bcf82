"""Prometheus metrics: GET /metrics. Counters and histograms are cumulative, kept in Redis by the processes that
finish invocations (objects/signals/tally.py) and sweep; gauges are read from the database at scrape time; plus this
process's registry."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from . import conf
from .models import OPEN_STATUSES, Invocation
from .selectors import inbox_depth_by_type
from .signals import notify, tally
from .worker.sweeper import SWEEPER_ACTIONS, SWEEPER_KEY

log = logging.getLogger("objects.metrics")

BUCKETS = tally.BUCKETS


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


def _hashes(keys: list[str]) -> dict[str, dict[str, int]] | None:
    """The Redis hashes `keys` (field -> count), read in one round trip; None when Redis is unreachable."""
    try:
        replies = notify.pipelined([("HGETALL", key) for key in keys])
    except Exception as exc:  # noqa: BLE001 - Redis down: the counters are left out, not reported as zero
        log.warning("metrics not read from Redis: %s", exc)
        return None
    found = {}
    for key, reply in zip(keys, replies, strict=True):
        pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
        found[key] = {_text(field): int(count) for field, count in pairs}
    return found


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ObjectsCollector(Collector):
    """Per scrape: the cumulative counters and histograms from Redis (one round trip), the open invocations and
    inboxes from the database."""

    def collect(self) -> Iterator:
        keys = [tally.INVOCATIONS_KEY, tally.RETRIES_KEY, *tally.HISTOGRAM_KEYS.values(), SWEEPER_KEY]
        stored = _hashes(keys)
        if stored is not None:
            yield from self._counters(stored)
            yield from self._histograms(stored)
        yield self._open()
        yield from self._inbox()
        yield self._sweeper(None if stored is None else stored[SWEEPER_KEY])

    def _counters(self, stored: dict[str, dict[str, int]]) -> Iterator:
        done = CounterMetricFamily(
            "objects_invocations",
            "Finished invocations by object type, handler and outcome (succeeded, failed, cancelled, killed).",
            labels=["type", "handler", "outcome"],
        )
        retries = CounterMetricFamily(
            "objects_invocation_retries",
            "Failed attempts of invocations that were retried after them.",
            labels=["type", "handler"],
        )
        for family, key in ((done, tally.INVOCATIONS_KEY), (retries, tally.RETRIES_KEY)):
            for field, count in sorted(stored[key].items()):
                family.add_metric(tally.labels_of(field), count)
            yield family

    def _histograms(self, stored: dict[str, dict[str, int]]) -> Iterator:
        texts = {
            "objects_handler_duration_seconds": "Handler duration (started to finished) of invocations that ran.",
            "objects_end_to_end_latency_seconds": "Acceptance to completion of invocations that ran.",
        }
        for name, key in tally.HISTOGRAM_KEYS.items():
            family = HistogramMetricFamily(name, texts[name], labels=["type", "handler"])
            series: dict[tuple[str, str], dict[str, int]] = {}
            for field, count in stored[key].items():
                type_name, handler, bucket = tally.labels_of(field)
                series.setdefault((type_name, handler), {})[bucket] = count
            for (type_name, handler), counts in sorted(series.items()):
                cumulative, total = [], 0
                for index, bound in enumerate(BUCKETS):
                    total += counts.get(str(index), 0)
                    cumulative.append((str(bound), total))
                cumulative.append(("+Inf", total + counts.get("inf", 0)))
                family.add_metric([type_name, handler], cumulative, counts.get("sum", 0) / 1_000_000)
            yield family

    def _open(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "objects_invocations_open",
            "Open invocations by object type, handler and status.",
            labels=["type", "handler", "status"],
        )
        rows = (
            Invocation.objects.filter(status__in=OPEN_STATUSES)
            .order_by()
            .values_list("type_name", "handler", "status")
            .annotate(n=Count("pk"))
        )
        for type_name, handler, status, count in sorted(rows):
            family.add_metric([type_name, handler, status], count)
        return family

    def _inbox(self) -> Iterator:
        depth = GaugeMetricFamily(
            "objects_inbox_depth", "Invocations waiting (pending or backing off) per object type.", labels=["type"]
        )
        age = GaugeMetricFamily(
            "objects_oldest_pending_age_seconds",
            "Age of the oldest pending invocation per object type (0 when none).",
            labels=["type"],
        )
        for type_name, (count, oldest) in sorted(inbox_depth_by_type().items()):
            depth.add_metric([type_name], count)
            age.add_metric([type_name], _seconds(oldest))
        yield depth
        yield age

    def _sweeper(self, stored: dict[str, int] | None) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "objects_sweeper_actions", "Actions taken by the sweeper, across all processes.", labels=["action"]
        )
        if stored is None:  # Redis down: this process's own counts
            stored = {
                sample.labels["action"]: int(sample.value)
                for metric in SWEEPER_ACTIONS.collect()
                for sample in metric.samples
                if sample.name.endswith("_total")
            }
        for action, value in sorted(stored.items()):
            family.add_metric([action], value)
        return family


_OBJECTS_REGISTRY = CollectorRegistry(auto_describe=False)
_OBJECTS_REGISTRY.register(ObjectsCollector())


def metrics_allowed(request: HttpRequest) -> bool:
    """Staff with a session, or a client address in OBJECTS_METRICS_ALLOW (REMOTE_ADDR, not a forwarded header)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    return request.META.get("REMOTE_ADDR", "") in set(conf.get("OBJECTS_METRICS_ALLOW") or [])


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: Prometheus text format."""
    if not metrics_allowed(request):
        return HttpResponse(
            "Forbidden: /metrics is for staff or addresses in OBJECTS_METRICS_ALLOW.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    body = generate_latest(_OBJECTS_REGISTRY) + generate_latest(REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)

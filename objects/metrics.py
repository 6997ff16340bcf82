"""Prometheus metrics: GET /metrics, computed from the database at scrape time (workers are separate
processes), plus sweeper actions counted in Redis by every process that sweeps, plus this process's registry."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from . import conf
from .models import DONE_STATUSES, Invocation, Status
from .selectors import inbox_depth_by_type

log = logging.getLogger("objects.metrics")

# Not in the default registry: the exposed value is the cross-process one kept in Redis.
SWEEPER_ACTIONS = Counter("objects_sweeper_actions", "Actions taken by the sweeper.", ["action"], registry=None)
SWEEPER_KEY = "objects:metrics:sweeper"

# Histogram buckets (seconds) and the window of finished invocations they describe.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
WINDOW = timedelta(minutes=15)


def record_sweep(counts: dict[str, int]) -> None:
    """Count a sweep's actions here and in Redis (so that the web process's /metrics sees every worker's)."""
    for action, count in counts.items():
        if count:
            SWEEPER_ACTIONS.labels(action=action).inc(count)
    if not any(counts.values()):
        return
    try:
        from .notify import client

        pipe = client().pipeline()
        for action, count in counts.items():
            if count:
                pipe.hincrby(SWEEPER_KEY, action, count)
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - metrics never break the sweeper
        log.warning("sweeper metrics not recorded in Redis: %s", exc)


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


class DatabaseCollector(Collector):
    """Invocation counts, latency histograms, inbox depth and retries, read from the database per scrape."""

    def collect(self) -> Iterator:
        yield from self._invocations()
        yield from self._histograms()
        yield from self._inbox()
        yield from self._sweeper()

    def _invocations(self) -> Iterator:
        done = CounterMetricFamily(
            "objects_invocations",
            "Finished invocations by object type, handler and outcome (all retained rows).",
            labels=["type", "handler", "outcome"],
        )
        open_ = GaugeMetricFamily(
            "objects_invocations_open",
            "Open invocations by object type, handler and status.",
            labels=["type", "handler", "status"],
        )
        retries = CounterMetricFamily(
            "objects_invocation_retries",
            "Failed attempts that were (or will be) retried, summed over invocations.",
            labels=["type", "handler"],
        )
        rows = (
            Invocation.objects.order_by()
            .values("type_name", "handler", "status")
            .annotate(n=Count("pk"), attempts=Sum("attempts"))
        )
        attempts: dict[tuple[str, str], int] = {}
        for row in rows:
            labels = [row["type_name"], row["handler"], row["status"]]
            (done if row["status"] in DONE_STATUSES else open_).add_metric(labels, row["n"])
            pair = (row["type_name"], row["handler"])
            attempts[pair] = attempts.get(pair, 0) + (row["attempts"] or 0)
        for (type_name, handler), total in sorted(attempts.items()):
            retries.add_metric([type_name, handler], total)
        yield done
        yield open_
        yield retries

    def _histograms(self) -> Iterator:
        since = timezone.now() - WINDOW
        finished = Invocation.objects.filter(
            finished_at__gte=since, started_at__isnull=False, status__in=[Status.SUCCEEDED, Status.FAILED]
        ).order_by()
        specs = (
            ("objects_handler_duration_seconds", "Handler duration (started to finished)", F("started_at")),
            ("objects_end_to_end_latency_seconds", "Acceptance to completion", F("created_at")),
        )
        for name, text, start in specs:
            family = HistogramMetricFamily(
                name,
                f"{text}, over invocations finished in the last {int(WINDOW.total_seconds())} s.",
                labels=["type", "handler"],
            )
            elapsed = ExpressionWrapper(F("finished_at") - start, output_field=DurationField())
            buckets = {
                f"b{i}": Count("pk", filter=Q(elapsed__lte=timedelta(seconds=bound))) for i, bound in enumerate(BUCKETS)
            }
            rows = (
                finished.annotate(elapsed=elapsed)
                .values("type_name", "handler")
                .annotate(n=Count("pk"), total=Sum("elapsed"), **buckets)
            )
            for row in rows:
                counts: dict[str, Any] = dict(row)
                cumulative = [(str(bound), counts[f"b{i}"]) for i, bound in enumerate(BUCKETS)]
                cumulative.append(("+Inf", row["n"]))
                family.add_metric([counts["type_name"], counts["handler"]], cumulative, _seconds(counts["total"]))
            yield family

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

    def _sweeper(self) -> Iterator:
        family = CounterMetricFamily(
            "objects_sweeper_actions", "Actions taken by the sweeper, across all processes.", labels=["action"]
        )
        try:
            from .notify import client

            raw: dict[bytes, bytes] = client().hgetall(SWEEPER_KEY)  # type: ignore[assignment]
            stored = {key.decode(): int(value) for key, value in raw.items()}
        except Exception as exc:  # noqa: BLE001 - Redis down: fall back to this process's counts
            log.warning("sweeper metrics not read from Redis: %s", exc)
            stored = {
                sample.labels["action"]: int(sample.value)
                for metric in SWEEPER_ACTIONS.collect()
                for sample in metric.samples
                if sample.name.endswith("_total")
            }
        for action, value in sorted(stored.items()):
            family.add_metric([action], value)
        yield family


_DATABASE_REGISTRY = CollectorRegistry(auto_describe=False)
_DATABASE_REGISTRY.register(DatabaseCollector())


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
    body = generate_latest(_DATABASE_REGISTRY) + generate_latest(REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)

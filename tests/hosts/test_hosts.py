"""The system across hosts (tests/hosts/cluster.py: one host with PostgreSQL and Redis, a web host, two worker
hosts) under the fault suite's model-checked load over HTTP (tests/faults/model.py: every accepted request
applied exactly once, each key's order kept, state equal to the model), while a host vanishes, a host's network
is cut, a worker host loses Redis, the web host loses Redis. Every process runs with OBJECTS_HOST_LOSS_BOUND
= 10 s; each case prints its figures (run with -s)."""

from __future__ import annotations

import datetime as dt
import json
import time

import httpx
import redis

from tests.faults.model import HttpSubmit, Load, check_invariants
from tests.hosts.cluster import Cluster
from tests.hosts.conftest import BOUND

REDIS_PORT = 6379


def load_for(cluster: Cluster, token: str, prefix: str, seed: int) -> tuple[Load, HttpSubmit]:
    submit = HttpSubmit(cluster.web_url, token)
    return Load(prefix=prefix, keys=30, threads=8, call_share=0.3, call_timeout=20.0, submit=submit, seed=seed), submit


def hold(cluster: Cluster, token: str, prefix: str, count: int, seconds: float) -> None:
    """Sends of a handler that runs `seconds` inside its transaction, on keys of their own, so that the hosts
    are surely inside transactions when the fault comes. Short: a worker's drain runs the slow keys it finds one
    after another, so their handlers add up in the time until every key moved."""
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=cluster.web_url, headers=headers, timeout=30) as client:
        for n in range(count):
            sent = client.post(f"/ingress/Recorder/{prefix}-{n}/hold/send", content=json.dumps({"sleep": seconds}))
            assert sent.status_code == 202, sent.text


def sessions(address: str, *, in_transaction: bool = False) -> int:
    """PostgreSQL sessions of the host at `address` (those inside a transaction only, with `in_transaction`)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE client_addr = %s::inet"
            + (" AND xact_start IS NOT NULL" if in_transaction else ""),
            [address],
        )
        return int(cursor.fetchone()[0])


def wait_for(predicate, timeout: float, step: float = 0.1) -> float:
    """Seconds until `predicate()` held; raises when it did not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    raise AssertionError(f"not within {timeout:.0f}s: {predicate.__doc__ or predicate}")


def inside_transactions(address: str) -> int:
    wait_for(lambda: sessions(address, in_transaction=True) > 0, timeout=20)
    return sessions(address, in_transaction=True)


def settle(prefixes: tuple[str, ...], timeout: float = 120.0) -> float:
    """Seconds until no invocation of these keys is open (the hosts' beat sweeps; nothing is swept from here)."""
    from django.db.models import Q

    from objects.models import OPEN_STATUSES, Invocation

    keys = Q()
    for prefix in prefixes:
        keys |= Q(key__startswith=f"{prefix}-")

    def settled() -> bool:
        return not Invocation.objects.filter(keys, status__in=OPEN_STATUSES).exists()

    return wait_for(settled, timeout, step=0.5)


def time_until_every_key_moved(prefixes: tuple[str, ...], at: float) -> tuple[float, int]:
    """For each key with an invocation open at wall time `at`: seconds until one of its invocations started
    after `at` (0 when the committed run of one had started before: it ran on a host that went on). Returns the
    largest, and how many keys had work open."""
    from django.db.models import Q

    from objects.models import Invocation

    moment = dt.datetime.fromtimestamp(at, tz=dt.UTC)
    keys = Q()
    for prefix in prefixes:
        keys |= Q(key__startswith=f"{prefix}-")
    rows = Invocation.objects.filter(keys, created_at__lte=moment).filter(
        Q(finished_at__gt=moment) | Q(finished_at__isnull=True)
    )
    waited: dict[str, float] = {}
    for key, started in rows.values_list("key", "started_at"):
        seconds = 0.0 if started is None or started <= moment else (started - moment).total_seconds()
        waited[key] = min(waited.get(key, seconds), seconds)
    slowest = sorted(waited.items(), key=lambda item: -item[1])[:4]
    print(f"\n[hosts] slowest keys after {moment:%H:%M:%S.%f}: {[(k, round(v, 1)) for k, v in slowest]}")
    return max(waited.values(), default=0.0), len(waited)


def finished_between(prefix: str, start: float, end: float) -> int:
    from objects.models import Invocation, Status

    return Invocation.objects.filter(
        key__startswith=f"{prefix}-",
        status=Status.SUCCEEDED,
        finished_at__gt=dt.datetime.fromtimestamp(start, tz=dt.UTC),
        finished_at__lt=dt.datetime.fromtimestamp(end, tz=dt.UTC),
    ).count()


def heartbeat_after(cluster: Cluster, n: int, moment: float) -> bool:
    """Worker host n wrote its heartbeat to Redis after wall time `moment`."""
    beat = redis.Redis.from_url(cluster.redis_url, socket_timeout=2).get(f"objects:worker:{cluster.worker_name(n)}")
    return beat is not None and float(beat) > moment


def report(case: str, load: Load, submit: HttpSubmit, figures: dict, **more: object) -> None:
    failures = sum(1 for a in load.attempts if not a.accepted)
    extra = ", ".join(
        f"{name} {value:.1f}s" if isinstance(value, float) else f"{name} {value}" for name, value in more.items()
    )
    print(
        f"\n[hosts] {case}: requests {len(load.attempts)}, accepted {figures['accepted']}, failures {failures}, "
        f"HTTP {dict(sorted(submit.statuses.items()))}, {extra}; lost 0, doubled 0, out of order 0"
    )


def test_a_worker_host_removed_mid_transaction(hosts_db: Cluster, token: str):
    cluster = hosts_db
    load, submit = load_for(cluster, token, "gone", seed=41)
    load.start()
    time.sleep(3)
    hold(cluster, token, "gonehold", count=6, seconds=1)
    victim = cluster.worker(2)
    open_at_removal = inside_transactions(victim.address)
    removed = time.time()
    cluster.kill_host(2)
    ended = wait_for(lambda: sessions(victim.address) == 0, timeout=60)
    time.sleep(max(0.0, BOUND + 3 - (time.time() - removed)))
    load.stop()
    settled = settle(("gone", "gonehold"))
    figures = check_invariants(load)
    moved, stalled = time_until_every_key_moved(("gone", "gonehold"), removed)
    report(
        "a. worker host removed",
        load,
        submit,
        figures,
        **{
            "transactions open on it": open_at_removal,
            "its sessions ended after": ended,
            "keys with work open": stalled,
            "every key moved again after": moved,
            "settled after the load in": settled,
        },
    )
    cluster.revive_host(2)
    wait_for(lambda: heartbeat_after(cluster, 2, removed), timeout=60)
    assert ended <= BOUND, f"the vanished host's sessions lived {ended:.1f}s, over the bound"
    assert moved <= BOUND, f"a key waited {moved:.1f}s for the other host, over the bound of {BOUND:.0f}s"
    assert not submit.unclear, submit.unclear[:5]


def test_a_worker_hosts_network_cut_for_45_seconds(hosts_db: Cluster, token: str):
    cluster = hosts_db
    load, submit = load_for(cluster, token, "cut", seed=42)
    load.start()
    time.sleep(3)
    hold(cluster, token, "cuthold", count=6, seconds=1)
    victim = cluster.worker(1)
    open_at_cut = inside_transactions(victim.address)
    cut = time.time()
    cluster.net.cut(victim)
    ended = wait_for(lambda: sessions(victim.address) == 0, timeout=44)
    time.sleep(max(0.0, 45 - (time.time() - cut)))
    cluster.net.mend(victim)
    mended = time.time()
    done_during_cut = finished_between("cut", cut + BOUND, mended)
    rejoined = wait_for(lambda: heartbeat_after(cluster, 1, mended) and sessions(victim.address) > 0, timeout=60)
    time.sleep(3)
    load.stop()
    settled = settle(("cut", "cuthold"))
    figures = check_invariants(load)
    moved, stalled = time_until_every_key_moved(("cut", "cuthold"), cut)
    report(
        "b. worker host's network cut 45 s",
        load,
        submit,
        figures,
        **{
            "transactions open on it": open_at_cut,
            "its sessions ended after": ended,
            "keys with work open": stalled,
            "every key moved again after": moved,
            "finished by the other host while cut (after the bound)": done_during_cut,
            "rejoined after the cable came back in": rejoined,
            "settled after the load in": settled,
        },
    )
    assert ended <= BOUND, f"the cut host's sessions lived {ended:.1f}s on the server, over the bound"
    assert moved <= BOUND, f"a key waited {moved:.1f}s for the other host, over the bound of {BOUND:.0f}s"
    assert done_during_cut > 0, "the other host did not go on while the network was cut"
    assert not submit.unclear, submit.unclear[:5]


def test_a_worker_host_cut_from_redis_only(hosts_db: Cluster, token: str):
    cluster = hosts_db
    load, submit = load_for(cluster, token, "noredis", seed=43)
    load.start()
    time.sleep(3)
    victim = cluster.worker(2)
    cut = time.time()
    cluster.net.block(victim, cluster.db.address, REDIS_PORT)
    time.sleep(20)
    cluster.net.unblock(victim)
    mended = time.time()
    done_during_cut = finished_between("noredis", cut, mended)
    time.sleep(3)
    load.stop()
    settled = settle(("noredis",))
    figures = check_invariants(load)
    moved, stalled = time_until_every_key_moved(("noredis",), cut)
    report(
        "c. worker host cut from Redis 20 s",
        load,
        submit,
        figures,
        **{
            "keys with work open": stalled,
            "every key moved again after": moved,
            "finished while cut": done_during_cut,
            "settled after the load in": settled,
        },
    )
    assert done_during_cut > 0, "no work completed while one worker host could not reach Redis"
    assert moved <= BOUND, f"a key waited {moved:.1f}s, over the bound of {BOUND:.0f}s"
    assert not submit.unclear, submit.unclear[:5]


def test_the_web_host_cut_from_redis(hosts_db: Cluster, token: str):
    cluster = hosts_db
    load, submit = load_for(cluster, token, "webcut", seed=44)
    load.start()
    time.sleep(3)
    cut = time.time()
    cluster.net.block(cluster.web, cluster.db.address, REDIS_PORT)
    time.sleep(10)
    cluster.net.unblock(cluster.web)
    mended = time.time()
    time.sleep(5)
    load.stop()
    settled = settle(("webcut",))
    figures = check_invariants(load)
    wall = time.time() - time.monotonic()
    met = [a for a in load.attempts if a.started + wall < mended and a.ended + wall > cut]
    returned = sum(1 for a in met if a.outcome == "returned")
    refused = sum(1 for a in met if a.outcome == "refused")
    report(
        "d. web host cut from Redis 10 s",
        load,
        submit,
        figures,
        **{
            "requests that met the cut": len(met),
            "of them calls returned": returned,
            "of them 503": refused,
            "settled after the load in": settled,
        },
    )
    assert not submit.unclear, f"answers other than a result or a clear 503: {submit.unclear[:5]}"
    assert met, "no request met the cut"

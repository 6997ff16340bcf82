"""Every Redis key and channel of the app, by prefix: what each holds and who uses it.

Redis holds nothing that cannot be lost (docs/decisions/0001): a lost doorbell is rung again by the sweeper,
a lost done signal makes the waiter read the database, a lost count only weakens a limit for a while.
"""

from __future__ import annotations

# doorbells (objects/signals/doorbell.py): + partition
PARTITION_BELL_PREFIX = "objects:pbell:"  # the counter of rings since the partition's drain read it
WAKE_PREFIX = "objects:wake:"  # a list a lingering drain blocks on; every ring pushes to it
PUBLISHED_PREFIX = "objects:published:"  # a hint: a Celery message waits in the partition's queue

# invocations: + invocation id
DONE_PREFIX = "objects:done:"  # its done signal, a list (objects/signals/notify.py)
START_PREFIX = "objects:starts:"  # how many times it was started, for the crash limit (objects/signals/crashes.py)

CHANGED_PREFIX = "objects:changed:"  # + type: pub/sub channel of committed state versions (objects/watch.py)
WORKER_PREFIX = "objects:worker:"  # + worker name: its heartbeat (objects/worker/heartbeat.py)
RATE_PREFIX = "objects:rate"  # the rate limits' counters (objects/ratelimit.py)

# metrics, hashes summed over every process (objects/signals/tally.py, objects/worker/sweeper.py, objects/metrics.py)
INVOCATIONS_KEY = "objects:metrics:invocations"  # "type|handler|outcome" -> finished invocations
RETRIES_KEY = "objects:metrics:retries"  # "type|handler" -> failed attempts retried
DURATION_KEY = "objects:metrics:duration"  # the handler duration histogram
LATENCY_KEY = "objects:metrics:latency"  # the end-to-end latency histogram
SWEEPER_KEY = "objects:metrics:sweeper"  # action -> the sweeper's actions

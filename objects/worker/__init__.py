"""The worker: the drain loops a Celery task runs (drain), the pass over many keys of a partition in one
transaction (partition), the run of one key's inbox under its row lock (inbox), the slow keys it hands to
per-key drains (slowkeys), the sweeper and the worker's heartbeat. objects/tasks.py holds the Celery entry
points over them.
"""

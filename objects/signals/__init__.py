"""The Redis protocol: the doorbell that wakes a partition's drain, the caller's wait for a done signal,
crash and metrics counts, the Redis client and the broker's hardening. Redis only carries signals; the
database stays the source of truth, so everything here may be lost and rung again.
"""

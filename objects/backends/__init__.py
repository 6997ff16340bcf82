"""Database backends: `objects.backends.postgresql` (a settings' ENGINE), Django's PostgreSQL backend with a
health check that costs no round trip while the connection is quiet and a cursor kept for the hot paths'
raw statements (objects/store/db.py).
"""

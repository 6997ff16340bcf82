"""The web process's event loop's own connections (objects/asgi.py answers token calls and sends there): a bounded
PostgreSQL pool with grouped inserts, and the doorbell and done signal on its own Redis connections."""

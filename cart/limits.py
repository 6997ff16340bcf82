"""The cart's limits and the shape of its keys."""

MAX_QUANTITY = 99
MAX_LINES = 100
ANON_PREFIX = "anon:"


def is_anonymous_key(key: str) -> bool:
    """A cart key of a visitor who has not signed in: "anon:<session key>"."""
    return key.startswith(ANON_PREFIX)

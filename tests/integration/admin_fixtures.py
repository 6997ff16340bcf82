"""Shared pieces of the admin tests: a signed-in superuser's client and rows made directly."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.integration.test_admin import entries, invocation, messages_of, put

__all__ = ["entries", "invocation", "messages_of", "put", "operator"]


@pytest.fixture
def operator(db) -> Client:
    """A superuser's client (the admin's operator)."""
    user = User.objects.create_superuser("operator", "operator@example.com", "pw")
    client = Client()
    client.force_login(user)
    client.user = user  # type: ignore[attr-defined]
    return client

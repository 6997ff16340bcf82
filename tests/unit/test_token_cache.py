"""The ingress's token authentication caches lookups per process (objects/api/authentication.py): no token
query per call, and a revoked token or a deactivated user stops working at once in this process."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from objects.api.authentication import CachedTokenAuthentication, cache_clear

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    cache_clear()
    yield
    cache_clear()


@pytest.fixture
def token():
    user = get_user_model().objects.create_user("token-cache-user", password="x")
    return Token.objects.create(user=user)


def test_second_lookup_reads_no_row(token, django_assert_num_queries):
    auth = CachedTokenAuthentication()
    with django_assert_num_queries(1):
        user, _ = auth.authenticate_credentials(token.key)
    with django_assert_num_queries(0):
        again, _ = auth.authenticate_credentials(token.key)
    assert again.pk == user.pk == token.user_id


def test_each_request_gets_its_own_user_object(token):
    auth = CachedTokenAuthentication()
    first, _ = auth.authenticate_credentials(token.key)
    first.session_key = "from-another-request"
    second, _ = auth.authenticate_credentials(token.key)
    assert second is not first
    assert getattr(second, "session_key", None) is None


def test_deleted_token_stops_working_at_once(token):
    auth = CachedTokenAuthentication()
    auth.authenticate_credentials(token.key)
    token.delete()
    with pytest.raises(AuthenticationFailed):
        auth.authenticate_credentials(token.key)


def test_deactivated_user_stops_working_at_once(token):
    auth = CachedTokenAuthentication()
    auth.authenticate_credentials(token.key)
    token.user.is_active = False
    token.user.save()
    with pytest.raises(AuthenticationFailed):
        auth.authenticate_credentials(token.key)


def test_unknown_token_is_refused_and_not_cached(django_assert_num_queries):
    auth = CachedTokenAuthentication()
    for _ in range(2):
        with django_assert_num_queries(1), pytest.raises(AuthenticationFailed):
            auth.authenticate_credentials("0" * 40)


def test_zero_seconds_turns_the_cache_off(token, settings, django_assert_num_queries):
    settings.OBJECTS_TOKEN_CACHE_SECONDS = 0
    auth = CachedTokenAuthentication()
    for _ in range(2):
        with django_assert_num_queries(1):
            auth.authenticate_credentials(token.key)

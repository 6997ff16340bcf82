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


def test_a_cached_user_copy_is_its_own_object_with_the_same_fields(token):
    auth = CachedTokenAuthentication()
    auth.authenticate_credentials(token.key)
    first, _ = auth.authenticate_credentials(token.key)
    second, _ = auth.authenticate_credentials(token.key)
    assert first._state is not second._state
    assert first._state.fields_cache is not second._state.fields_cache
    assert (first._state.db, first._state.adding) == ("default", False)
    assert {f.attname: getattr(first, f.attname) for f in first._meta.concrete_fields} == {
        f.attname: getattr(token.user, f.attname) for f in token.user._meta.concrete_fields
    }
    first.username = "changed on one request"
    assert second.username == token.user.username


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dXNlcjpwdw==",
        "Token",
        "Token a b",
        "token {key}",
        "TOKEN {key}",
        "Token {key}",
        "Token  {key} ",
        "Token 0000",
        "Token caf\u00e9",
    ],
)
def test_the_header_is_read_as_drf_reads_it(token, header):
    """The same outcome as DRF's TokenAuthentication for every shape of header: no credentials (None), the
    same AuthenticationFailed message, or the same user."""
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.test import APIRequestFactory

    class Reference(TokenAuthentication):
        pass

    extra = {} if header is None else {"HTTP_AUTHORIZATION": header.format(key=token.key)}
    request = APIRequestFactory().post("/ingress/T/k/h", **extra)

    def outcome(auth):
        try:
            found = auth.authenticate(request)
        except AuthenticationFailed as exc:
            return ("refused", str(exc.detail))
        return None if found is None else ("user", found[0].pk)

    assert outcome(CachedTokenAuthentication()) == outcome(Reference())

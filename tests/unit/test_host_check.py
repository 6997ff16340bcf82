"""middleware.host_refused: Django's Host check for the ingress, with the hosts it found allowed remembered."""

from __future__ import annotations

from django.test import RequestFactory

from objects.middleware import host_refused


def test_a_remembered_host_is_refused_once_allowed_hosts_no_longer_hold_it(settings):
    settings.ALLOWED_HOSTS = ["shop.example"]
    request = RequestFactory().post("/ingress/A/k/h", HTTP_HOST="shop.example")
    assert host_refused(request) is None
    assert host_refused(request) is None  # remembered
    settings.ALLOWED_HOSTS = ["other.example"]
    refused = host_refused(request)
    assert refused is not None and refused.status_code == 400
    assert b"Invalid Host header 'shop.example'" in refused.content


def test_a_host_refused_is_refused_every_time(settings):
    settings.ALLOWED_HOSTS = ["shop.example"]
    for _ in range(2):
        refused = host_refused(RequestFactory().post("/ingress/A/k/h", HTTP_HOST="evil.example"))
        assert refused is not None and refused.status_code == 400

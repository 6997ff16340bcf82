"""Where an admin action returns: to the page it started from (an instance's or an invocation's page, sent
as `next`), else to the list as Django's actions do."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme


def next_url(request: HttpRequest) -> str:
    """The `next` the request carries when it is a page of this site; "" otherwise."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=False)
    return url if url and allowed else ""


def back(request: HttpRequest) -> HttpResponse | None:
    """A redirect to `next` when there is one; None lets the admin return to its list."""
    url = next_url(request)
    return HttpResponseRedirect(url) if url else None

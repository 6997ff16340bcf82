"""Paging of management lists: limit/offset with bounds, so no query parameter can overflow the database."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination

MAX_OFFSET = 2**62


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset (default 50, at most 1000 per page); an offset beyond any table is clamped."""

    default_limit = 50  # not REST_FRAMEWORK's PAGE_SIZE: the host's settings do not change the app's API
    max_limit = 1000

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), MAX_OFFSET)

"""Rendering helpers for the admin: JSON as syntax-highlighted HTML, durations as short text."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.utils.safestring import SafeString, mark_safe
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import JsonLexer

_FORMATTER = HtmlFormatter(noclasses=True, style="friendly", nowrap=False, cssstyles="margin:0;padding:6px")


def json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def json_html(value: Any) -> SafeString:
    """Pretty, highlighted JSON (Pygments escapes the text; inline styles need no stylesheet)."""
    return mark_safe(highlight(json_text(value), JsonLexer(), _FORMATTER))  # noqa: S308


def age_text(age: timedelta | None) -> str:
    if age is None:
        return "—"
    seconds = int(age.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"

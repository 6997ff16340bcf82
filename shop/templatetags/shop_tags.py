"""Template filters of the shop."""

from django import template

register = template.Library()


@register.filter
def money(cents) -> str:
    """Integer cents as dollars: 1999 -> "$19.99", -500 -> "-$5.00"."""
    try:
        cents = int(cents)
    except (TypeError, ValueError):
        return ""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"

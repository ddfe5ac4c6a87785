"""A stage rule's conditions in words: plain data in, text out (models, the admin and the pages show rules so)."""

from collections.abc import Sequence

from django.utils.translation import gettext as _


def conditions_describe(conditions: Sequence[dict]) -> str:
    """A rule in words, e.g. `order_count >= 1 and days_since_last_order > 365`."""
    parts = []
    for c in conditions:
        value = c.get("value")
        shown = f"{value[0]}..{value[1]}" if c.get("operator") == "between" and isinstance(value, list) else value
        parts.append(f"{c.get('feature')} {c.get('operator')} {shown}")
    return (" " + _("and") + " ").join(parts) or _("(no condition)")

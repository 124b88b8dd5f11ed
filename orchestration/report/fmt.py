"""Numbers formatted for people: currency, percentages, minutes and hours, counts."""

from __future__ import annotations

import math
from datetime import date, datetime

CURRENCY = "$"
MISSING = "–"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def count(value) -> str:
    return MISSING if _missing(value) else f"{round(value):,}"


def money(value, currency: str = CURRENCY) -> str:
    """$12,345 below a million, $1.2M above."""
    if _missing(value):
        return MISSING
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1_000_000:
        return f"{sign}{currency}{value / 1_000_000:.1f}M"
    return f"{sign}{currency}{value:,.0f}"


def money_range(low, high, currency: str = CURRENCY) -> str:
    if _missing(low) or _missing(high):
        return MISSING
    return f"{money(low, currency)} – {money(high, currency)}"


def pct(value, digits: int = 0) -> str:
    return MISSING if _missing(value) else f"{value * 100:.{digits}f}%"


def pct_points(delta) -> str:
    """A change of a rate, in percentage points."""
    if _missing(delta):
        return MISSING
    return f"{delta * 100:+.1f} pts"


def signed_pct(change) -> str:
    """A relative change (0.25 -> +25%)."""
    return MISSING if _missing(change) else f"{change * 100:+.0f}%"


def duration(minutes) -> str:
    """Minutes for people: 45 min, 2.5 h, 3.2 days."""
    if _missing(minutes):
        return MISSING
    if minutes < 1:
        return f"{minutes * 60:.0f} s"
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} days"


def day(value) -> str:
    if _missing(value):
        return MISSING
    if isinstance(value, datetime):
        return value.strftime("%d %b %Y")
    if isinstance(value, date):
        return value.strftime("%d %b %Y")
    return str(value)


def instant(value) -> str:
    """A UTC instant: 03 Mar 2025 07:57 UTC."""
    if _missing(value):
        return MISSING
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%d %b %Y %H:%M UTC")
    return str(value)


def measured(value) -> str:
    if _missing(value):
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# Vega expression: minutes on an axis as "30 min", "4 h", "2 d".
VEGA_DURATION_LABEL = (
    "datum.value < 120 ? format(datum.value, '.0f') + ' min' : "
    "datum.value < 2880 ? format(datum.value / 60, '.0f') + ' h' : "
    "format(datum.value / 1440, '.0f') + ' d'"
)

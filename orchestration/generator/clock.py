"""Local time of a site: UTC <-> wall clock, and the timestamp spellings of the exports.

The generator keeps every instant as a naive UTC `datetime`. A wall-clock value is only ever
produced from an instant, so it can never fall into a DST gap; a wall-clock value in the
repeated hour of a DST fall-back that is the *second* occurrence would be read as the first
one (fold=0) by the ingest, so such values are written with an explicit offset.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1)
_BUCKET = timedelta(minutes=15)  # every real UTC-offset change happens on a quarter hour


def format_offset(offset: timedelta) -> str:
    """`-05:00` for a UTC offset."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def iso_utc_z(instant: datetime) -> str:
    """CRM style: UTC with milliseconds and `Z`."""
    return instant.isoformat(timespec="milliseconds") + "Z"


class SiteClock:
    """Conversions for one IANA time zone, cached per quarter hour of UTC."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._cache: dict[int, tuple[timedelta, int]] = {}

    def _info(self, instant: datetime) -> tuple[timedelta, int]:
        key = (instant - _EPOCH) // _BUCKET
        info = self._cache.get(key)
        if info is None:
            aware = (_EPOCH + key * _BUCKET).replace(tzinfo=timezone.utc).astimezone(self.zone)
            offset = aware.utcoffset()
            assert offset is not None
            info = (offset, aware.fold)
            self._cache[key] = info
        return info

    def offset(self, instant: datetime) -> timedelta:
        """UTC offset in force at a UTC instant."""
        return self._info(instant)[0]

    def local(self, instant: datetime) -> datetime:
        """Naive wall-clock time of a UTC instant."""
        return instant + self._info(instant)[0]

    def to_utc(self, wall: datetime) -> datetime:
        """UTC instant of a naive wall-clock time (fold=0, as the ingest reads it)."""
        aware = wall.replace(tzinfo=self.zone).astimezone(timezone.utc)
        return aware.replace(tzinfo=None)

    def midnight_utc(self, day: date) -> datetime:
        """UTC instant at which the local day `day` starts."""
        return self.to_utc(datetime.combine(day, time()))

    def render(self, instant: datetime, style: str) -> str:
        """ISO 8601 with microseconds: `local` (no offset), `offset` (explicit) or `utc` (Z)."""
        if style == "utc":
            return instant.isoformat(timespec="microseconds") + "Z"
        offset, fold = self._info(instant)
        text = (instant + offset).isoformat(timespec="microseconds")
        if style == "offset" or fold:
            return text + format_offset(offset)
        return text

    def dst_gap_wall_time(self, year: int) -> datetime | None:
        """A wall-clock time inside the first spring-forward gap of `year`, if there is one."""
        instant = datetime(year, 1, 1)
        end = datetime(year + 1, 1, 1)
        previous = self.offset(instant)
        while instant < end:
            instant += _BUCKET
            current = self.offset(instant)
            if current > previous:
                return instant + previous + (current - previous) / 2
            previous = current
        return None

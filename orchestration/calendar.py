"""The per-site business calendar: `raw.site_calendar` (metrics.md section 4, Delays and SLA).

Each site's time is cut into contiguous UTC segments that alternate between open and closed,
with no gaps, built from the `sites` (time zone), `business_hours` (ISO day of week,
`[opens_at, closes_at)` local `HH:MM`, `24:00` = end of the day, several rows a day) and
`holidays` (site and local date closed all day) seeds. Every segment carries
`open_seconds_before`, the site's cumulative open seconds from the calendar's start to the
segment's start, so that the business time between two instants is a difference of two
cumulative values (a running max over one time line in SQL (int_missed_call_episodes_timed), no minute spines):

    cumulative_open(t) = open_seconds_before + (is_open ? seconds(t - segment_start) : 0)
    business_minutes(a, b) = (cumulative_open(b) - cumulative_open(a)) / 60

Local wall times are converted to UTC with `zoneinfo`: a wall time in a DST gap (which does
not exist) becomes the first instant after the gap; a wall time in a DST overlap takes the
earlier instant (`fold=0`). DuckDB's `timezone()` does neither, hence Python.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from orchestration.config import Config, ConfigError

logger = logging.getLogger(__name__)

TABLE = "raw.site_calendar"
DAYS_BEFORE = 14
DAYS_AFTER = 400


@dataclass(frozen=True)
class Segment:
    site: str
    segment_start_utc: datetime
    segment_end_utc: datetime
    is_open: bool
    open_seconds_before: float


def parse_hhmm(value: str, *, where: str) -> int:
    """`HH:MM` (00:00 .. 24:00) to minutes after local midnight."""
    text = (value or "").strip()
    try:
        hours_text, minutes_text = text.split(":")
        hours, minutes = int(hours_text), int(minutes_text)
    except ValueError as exc:
        raise ConfigError(f"{where}: {text!r} is not a local time HH:MM") from exc
    total = hours * 60 + minutes
    if not (0 <= minutes < 60 and 0 <= total <= 24 * 60):
        raise ConfigError(f"{where}: {text!r} is not a local time between 00:00 and 24:00")
    return total


def local_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall time of `tz` as a naive UTC instant.

    Overlap (the wall time happens twice): the earlier instant (fold=0). Gap (the wall time
    never happens): the first instant after the gap, i.e. the transition itself.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first.replace(tzinfo=None)
    # In a gap: fold=0 and fold=1 read the wall time with the offsets before and after the
    # transition; the transition instant lies between the two readings. Bisect on seconds.
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = min(first, second), max(first, second)
    offset_low = low.astimezone(tz).utcoffset()
    while (high - low) > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == offset_low:
            low = middle
        else:
            high = middle
    return high.replace(tzinfo=None, microsecond=0)


def _open_intervals_local(
    hours_rows: list[dict[str, str]], site: str
) -> dict[int, list[tuple[int, int]]]:
    """ISO day of week -> list of [open, close) minutes after local midnight."""
    by_day: dict[int, list[tuple[int, int]]] = {}
    for number, row in enumerate(hours_rows, start=2):
        if row["site"] != site:
            continue
        where = f"business_hours seed, line {number}"
        try:
            day = int(row["day_of_week"])
        except ValueError as exc:
            raise ConfigError(f"{where}: day_of_week {row['day_of_week']!r} is not 1..7") from exc
        if not 1 <= day <= 7:
            raise ConfigError(f"{where}: day_of_week {day} is not 1..7 (ISO, 1 = Monday)")
        opens = parse_hhmm(row["opens_at"], where=where)
        closes = parse_hhmm(row["closes_at"], where=where)
        if closes < opens:
            raise ConfigError(
                f"{where}: closes_at {row['closes_at']} is before opens_at {row['opens_at']}; "
                "hours past midnight are a row of the next day"
            )
        if closes > opens:
            by_day.setdefault(day, []).append((opens, closes))
    return by_day


def _holiday_dates(holiday_rows: list[dict[str, str]], site: str) -> set[date]:
    days: set[date] = set()
    for number, row in enumerate(holiday_rows, start=2):
        if row["site"] != site:
            continue
        try:
            days.add(date.fromisoformat(row["date"].strip()))
        except ValueError as exc:
            raise ConfigError(
                f"holidays seed, line {number}: date {row['date']!r} is not YYYY-MM-DD"
            ) from exc
    return days


def site_segments(
    site: str,
    time_zone: str,
    hours_rows: list[dict[str, str]],
    holiday_rows: list[dict[str, str]],
    first_date: date,
    last_date: date,
) -> list[Segment]:
    """Contiguous open/closed segments of one site over local dates [first_date, last_date]."""
    try:
        tz = ZoneInfo(time_zone)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError
        raise ConfigError(f"sites seed: site {site!r} has unknown time_zone {time_zone!r}") from exc
    by_day = _open_intervals_local(hours_rows, site)
    closed_days = _holiday_dates(holiday_rows, site)

    def at(day: date, minutes: int) -> datetime:
        return local_to_utc(datetime.combine(day, time()) + timedelta(minutes=minutes), tz)

    range_start = at(first_date, 0)
    range_end = at(last_date + timedelta(days=1), 0)

    opens: list[tuple[datetime, datetime]] = []
    day = first_date
    while day <= last_date:
        if day not in closed_days:
            for open_minute, close_minute in by_day.get(day.isoweekday(), []):
                start, end = at(day, open_minute), at(day, close_minute)
                if end > start:
                    opens.append((start, end))
        day += timedelta(days=1)

    # merge overlapping or touching open intervals (several rows a day, 24:00 + 00:00)
    opens.sort()
    merged: list[list[datetime]] = []
    for start, end in opens:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])

    segments: list[Segment] = []
    cursor = range_start
    cumulative = 0.0

    def emit(start: datetime, end: datetime, is_open: bool) -> None:
        nonlocal cumulative
        if end <= start:
            return
        segments.append(Segment(site, start, end, is_open, cumulative))
        if is_open:
            cumulative += (end - start).total_seconds()

    for start, end in merged:
        start, end = max(start, range_start), min(end, range_end)
        if end <= start:
            continue
        emit(cursor, start, False)
        emit(start, end, True)
        cursor = end
    emit(cursor, range_end, False)
    return segments


def calendar_date_range(
    con: duckdb.DuckDBPyConnection, today: date | None = None
) -> tuple[date, date]:
    """Local dates covered: the loaded legs' UTC dates (else today), -14 days / +400 days."""
    low = high = None
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'raw' and table_name = 'telephony_legs'"
    ).fetchone()[0]
    if exists:
        low, high = con.execute(
            "select cast(min(started_at_utc) as date), cast(max(started_at_utc) as date) "
            "from raw.telephony_legs"
        ).fetchone()
    if low is None or high is None:
        low = high = today or date.today()
    return low - timedelta(days=DAYS_BEFORE), high + timedelta(days=DAYS_AFTER)


def calendar_segments(config: Config, first_date: date, last_date: date) -> list[Segment]:
    segments: list[Segment] = []
    for row in config.seeds["sites"]:
        segments.extend(
            site_segments(
                row["site"],
                row["time_zone"],
                config.seeds["business_hours"],
                config.seeds["holidays"],
                first_date,
                last_date,
            )
        )
    return segments


def build_site_calendar(con: duckdb.DuckDBPyConnection, config: Config) -> int:
    """(Re)create `raw.site_calendar` from the seeds in force; returns the number of rows."""
    first_date, last_date = calendar_date_range(con)
    segments = calendar_segments(config, first_date, last_date)
    frame = pd.DataFrame(
        {
            "site": pd.Series([s.site for s in segments], dtype="object"),
            "segment_start_utc": pd.Series(
                [s.segment_start_utc for s in segments], dtype="datetime64[us]"
            ),
            "segment_end_utc": pd.Series(
                [s.segment_end_utc for s in segments], dtype="datetime64[us]"
            ),
            "is_open": pd.Series([s.is_open for s in segments], dtype="bool"),
            "open_seconds_before": pd.Series(
                [s.open_seconds_before for s in segments], dtype="float64"
            ),
        }
    )
    con.execute("create schema if not exists raw")
    con.register("site_calendar_frame", frame)
    try:
        con.execute(
            f"""
            create or replace table {TABLE} as
            select
                cast(site as varchar) as site,
                cast(segment_start_utc as timestamp) as segment_start_utc,
                cast(segment_end_utc as timestamp) as segment_end_utc,
                cast(is_open as boolean) as is_open,
                cast(open_seconds_before as double) as open_seconds_before
            from site_calendar_frame
            order by site, segment_start_utc
            """
        )
    finally:
        con.unregister("site_calendar_frame")
    logger.info(
        "site calendar: %s segments for %s sites, local dates %s to %s",
        len(segments),
        len(config.seeds["sites"]),
        first_date,
        last_date,
    )
    return len(segments)

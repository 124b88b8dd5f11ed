"""The per-site business calendar (orchestration/calendar.py)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pytest

from orchestration.calendar import (
    Segment,
    build_site_calendar,
    calendar_date_range,
    local_to_utc,
    site_segments,
)
from orchestration.config import Config, ConfigError, load_config

NY = "America/New_York"


def hours(site: str, rows: list[tuple[int, str, str]]) -> list[dict[str, str]]:
    return [
        {"site": site, "day_of_week": str(d), "opens_at": o, "closes_at": c} for d, o, c in rows
    ]


WEEKDAYS_9_17 = hours("nyc", [(d, "09:00", "17:00") for d in range(1, 6)])


def cumulative(segments: list[Segment], instant: datetime) -> float:
    for s in segments:
        if s.segment_start_utc <= instant < s.segment_end_utc:
            extra = (instant - s.segment_start_utc).total_seconds() if s.is_open else 0.0
            return s.open_seconds_before + extra
    raise AssertionError(f"{instant} not covered")


def business_minutes(segments: list[Segment], start: datetime, end: datetime) -> float:
    return (cumulative(segments, end) - cumulative(segments, start)) / 60


def assert_contiguous(segments: list[Segment]) -> None:
    total = 0.0
    for prev, cur in itertools.pairwise(segments):
        assert prev.segment_end_utc == cur.segment_start_utc
        assert prev.is_open != cur.is_open, "open and closed segments alternate"
    for s in segments:
        assert s.segment_end_utc > s.segment_start_utc
        assert s.open_seconds_before == pytest.approx(total)
        if s.is_open:
            total += (s.segment_end_utc - s.segment_start_utc).total_seconds()


def test_local_to_utc_gap_and_overlap():
    tz = ZoneInfo(NY)
    # spring forward 2025-03-09: 02:00-03:00 local does not exist -> first instant after it
    assert local_to_utc(datetime(2025, 3, 9, 2, 30), tz) == datetime(2025, 3, 9, 7, 0)
    assert local_to_utc(datetime(2025, 3, 9, 3, 0), tz) == datetime(2025, 3, 9, 7, 0)
    assert local_to_utc(datetime(2025, 3, 9, 1, 59), tz) == datetime(2025, 3, 9, 6, 59)
    # fall back 2025-11-02: 01:00-02:00 local happens twice -> the earlier (EDT) instant
    assert local_to_utc(datetime(2025, 11, 2, 1, 30), tz) == datetime(2025, 11, 2, 5, 30)
    assert local_to_utc(datetime(2025, 11, 2, 2, 0), tz) == datetime(2025, 11, 2, 7, 0)


def test_weekend_is_closed():
    segs = site_segments("nyc", NY, WEEKDAYS_9_17, [], date(2025, 1, 6), date(2025, 1, 19))
    assert_contiguous(segs)
    # Friday 2025-01-10 16:00 EST -> Monday 2025-01-13 10:00 EST: 1 h Friday + 1 h Monday
    assert business_minutes(segs, datetime(2025, 1, 10, 21, 0), datetime(2025, 1, 13, 15, 0)) == 120
    # the whole weekend contributes nothing
    assert business_minutes(segs, datetime(2025, 1, 11, 12, 0), datetime(2025, 1, 12, 23, 0)) == 0
    opens = [s for s in segs if s.is_open]
    assert len(opens) == 10
    assert opens[0].segment_start_utc == datetime(2025, 1, 6, 14, 0)
    assert opens[0].segment_end_utc == datetime(2025, 1, 6, 22, 0)
    # range: local midnight of the first date to local midnight after the last
    assert segs[0].segment_start_utc == datetime(2025, 1, 6, 5, 0)
    assert segs[-1].segment_end_utc == datetime(2025, 1, 20, 5, 0)


def test_dst_spring_forward_2025_03_09():
    rows = hours("nyc", [(7, "00:00", "24:00"), (1, "09:00", "17:00")])
    segs = site_segments("nyc", NY, rows, [], date(2025, 3, 9), date(2025, 3, 10))
    assert_contiguous(segs)
    sunday = next(s for s in segs if s.is_open)
    # Sunday 2025-03-09 is 23 hours long
    assert sunday.segment_start_utc == datetime(2025, 3, 9, 5, 0)
    assert sunday.segment_end_utc == datetime(2025, 3, 10, 4, 0)
    assert (sunday.segment_end_utc - sunday.segment_start_utc) == timedelta(hours=23)
    # Monday opens at 09:00 EDT = 13:00 UTC
    monday = [s for s in segs if s.is_open][1]
    assert monday.segment_start_utc == datetime(2025, 3, 10, 13, 0)
    # 01:00 EST (06:00 UTC) to 04:00 EDT (08:00 UTC): two real hours of open time
    assert business_minutes(segs, datetime(2025, 3, 9, 6, 0), datetime(2025, 3, 9, 8, 0)) == 120


def test_dst_gap_opening_time_takes_instant_after_gap():
    rows = hours("nyc", [(7, "02:30", "05:00")])
    segs = site_segments("nyc", NY, rows, [], date(2025, 3, 9), date(2025, 3, 9))
    opened = next(s for s in segs if s.is_open)
    assert opened.segment_start_utc == datetime(2025, 3, 9, 7, 0)  # 03:00 EDT
    assert opened.segment_end_utc == datetime(2025, 3, 9, 9, 0)  # 05:00 EDT


def test_dst_fall_back_2025_11_02():
    rows = hours("nyc", [(7, "00:00", "24:00"), (1, "09:00", "17:00")])
    segs = site_segments("nyc", NY, rows, [], date(2025, 11, 2), date(2025, 11, 3))
    assert_contiguous(segs)
    sunday = next(s for s in segs if s.is_open)
    # Sunday 2025-11-02 is 25 hours long
    assert (sunday.segment_end_utc - sunday.segment_start_utc) == timedelta(hours=25)
    assert (
        business_minutes(segs, datetime(2025, 11, 2, 4, 0), datetime(2025, 11, 3, 5, 0)) == 25 * 60
    )
    monday = [s for s in segs if s.is_open][1]
    assert monday.segment_start_utc == datetime(2025, 11, 3, 14, 0)  # 09:00 EST


def test_holiday_closes_the_whole_day():
    holidays = [
        {"site": "nyc", "date": "2025-01-08", "name": "Test day"},
        {"site": "lax", "date": "2025-01-09", "name": "Other site"},
    ]
    segs = site_segments("nyc", NY, WEEKDAYS_9_17, holidays, date(2025, 1, 6), date(2025, 1, 10))
    assert_contiguous(segs)
    opens = [s for s in segs if s.is_open]
    assert [s.segment_start_utc.date() for s in opens] == [
        date(2025, 1, 6),
        date(2025, 1, 7),
        date(2025, 1, 9),
        date(2025, 1, 10),
    ]
    # Tuesday 16:00 EST -> Thursday 10:00 EST: 1 h + (Wednesday closed) + 1 h
    assert business_minutes(segs, datetime(2025, 1, 7, 21, 0), datetime(2025, 1, 9, 15, 0)) == 120


def test_several_rows_per_day_and_lunch_break():
    rows = hours("lax", [(1, "07:00", "12:00"), (1, "12:30", "17:00")])
    segs = site_segments("lax", "America/Los_Angeles", rows, [], date(2025, 1, 6), date(2025, 1, 6))
    assert_contiguous(segs)
    opens = [s for s in segs if s.is_open]
    assert len(opens) == 2
    assert opens[0].segment_end_utc == datetime(2025, 1, 6, 20, 0)
    assert opens[1].segment_start_utc == datetime(2025, 1, 6, 20, 30)
    assert opens[1].open_seconds_before == 5 * 3600
    # 11:45 -> 12:45 local: 15 + 15 minutes open
    assert business_minutes(segs, datetime(2025, 1, 6, 19, 45), datetime(2025, 1, 6, 20, 45)) == 30


def test_24_00_ends_the_day_and_merges_with_next_midnight():
    rows = hours("nyc", [(1, "20:00", "24:00"), (2, "00:00", "02:00"), (2, "01:00", "03:00")])
    segs = site_segments("nyc", NY, rows, [], date(2025, 1, 6), date(2025, 1, 7))
    assert_contiguous(segs)
    opens = [s for s in segs if s.is_open]
    # Monday 20:00 -> Tuesday 03:00 local is one open segment (touching and overlapping rows)
    assert len(opens) == 1
    assert opens[0].segment_start_utc == datetime(2025, 1, 7, 1, 0)
    assert opens[0].segment_end_utc == datetime(2025, 1, 7, 8, 0)


def test_site_without_hours_is_one_closed_segment():
    segs = site_segments("nyc", NY, [], [], date(2025, 1, 6), date(2025, 1, 7))
    assert len(segs) == 1 and not segs[0].is_open


def test_bad_seed_values_are_refused():
    with pytest.raises(ConfigError, match="business_hours seed, line 2"):
        site_segments(
            "nyc", NY, hours("nyc", [(1, "9am", "17:00")]), [], date(2025, 1, 6), date(2025, 1, 6)
        )
    with pytest.raises(ConfigError, match="next day"):
        site_segments(
            "nyc", NY, hours("nyc", [(1, "22:00", "02:00")]), [], date(2025, 1, 6), date(2025, 1, 6)
        )
    with pytest.raises(ConfigError, match="time_zone"):
        site_segments("nyc", "Mars/Base", [], [], date(2025, 1, 6), date(2025, 1, 6))


def test_build_site_calendar_table(tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("create schema raw")
    con.execute("create table raw.telephony_legs (started_at_utc timestamp)")
    con.execute(
        "insert into raw.telephony_legs values "
        "(timestamp '2025-01-06 15:00:00'), (timestamp '2025-02-02 20:00:00')"
    )
    assert calendar_date_range(con) == (date(2024, 12, 23), date(2026, 3, 9))
    config = load_config()
    rows = build_site_calendar(con, config)
    assert rows == con.execute("select count(*) from raw.site_calendar").fetchone()[0]
    assert 1000 < rows < 10000
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'site_calendar' order by ordinal_position"
    ).fetchall()
    assert columns == [
        ("site", "VARCHAR"),
        ("segment_start_utc", "TIMESTAMP"),
        ("segment_end_utc", "TIMESTAMP"),
        ("is_open", "BOOLEAN"),
        ("open_seconds_before", "DOUBLE"),
    ]
    gaps = con.execute(
        """
        select count(*) from (
            select segment_end_utc,
                   lead(segment_start_utc) over (partition by site order by segment_start_utc) as next_start,
                   is_open,
                   lead(is_open) over (partition by site order by segment_start_utc) as next_open
            from raw.site_calendar
        ) where next_start is not null and (next_start <> segment_end_utc or next_open = is_open)
        """
    ).fetchone()[0]
    assert gaps == 0
    assert {
        r[0] for r in con.execute("select distinct site from raw.site_calendar").fetchall()
    } == {s["site"] for s in config.sites}
    # rebuilt on every call, not appended
    assert build_site_calendar(con, config) == rows
    assert con.execute("select count(*) from raw.site_calendar").fetchone()[0] == rows


def test_build_site_calendar_without_legs(tmp_path):
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    config = Config(
        vars={},
        seeds={
            "sites": [{"site": "nyc", "time_zone": NY}],
            "business_hours": WEEKDAYS_9_17,
            "holidays": [],
        },
    )
    assert build_site_calendar(con, config) > 400

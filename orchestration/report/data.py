"""What the weekly report reads: the PUBLISHED marts file (read-only) and the latest run's
gate results beside it (`<stem>.quality.json`). It never opens the warehouse."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from orchestration.publish import PUBLISHED_SCHEMA, quality_json_path

REQUIRED_TABLES = (
    "mart_weekly_summary",
    "mart_callback_delay_percentiles",
    "mart_conversion_by_delay_bucket",
    "mart_revenue_at_risk",
)
# Schemas that only the warehouse has: a file holding them is not the published marts.
WAREHOUSE_ONLY_SCHEMAS = ("raw", "restricted", "staging", "intermediate")


class ReportError(Exception):
    """The report cannot be built from this file (missing, not the published marts, empty)."""


@dataclass
class QualityStatus:
    """The latest run's gates, and whether the published marts come from that run."""

    found: bool
    run_id: str | None = None
    checked_at: str | None = None
    passed: bool | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    marts_from_latest_run: bool | None = None
    path: Path | None = None
    error: str | None = None

    @property
    def failed_gates(self) -> list[dict[str, Any]]:
        return [g for g in self.gates if not g.get("passed")]


@dataclass
class ReportData:
    marts_path: Path
    as_of: datetime | None
    published_at: datetime
    weeks: int
    weekly: pd.DataFrame
    percentiles: pd.DataFrame
    conversion: pd.DataFrame
    revenue: pd.DataFrame
    quality: QualityStatus

    @property
    def week_starts(self) -> list[date]:
        return list(self.weekly["week_start"])


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    frame = con.execute(sql, params or []).df()
    if "week_start" in frame.columns:
        frame["week_start"] = pd.to_datetime(frame["week_start"]).dt.date
    return frame


def _nan_to_none(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def read_quality(marts_path: Path, published_run_ids: set[str]) -> QualityStatus:
    path = quality_json_path(marts_path)
    if not path.exists():
        return QualityStatus(found=False, path=path)
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        return QualityStatus(found=False, path=path, error=f"unreadable: {error}")
    gates = [
        {key: _nan_to_none(value) for key, value in gate.items()}
        for gate in payload.get("gates", [])
        if isinstance(gate, dict)
    ]
    passed = payload.get("passed")
    if passed is None and gates:
        passed = all(g.get("passed") for g in gates)
    run_id = payload.get("run_id")
    return QualityStatus(
        found=True,
        run_id=run_id,
        checked_at=payload.get("checked_at"),
        passed=passed,
        gates=gates,
        marts_from_latest_run=(run_id in published_run_ids) if run_id else None,
        path=path,
    )


def load_report_data(marts_path: Path, weeks: int = 12) -> ReportData:
    """Read everything the report shows, through one read-only connection."""
    marts_path = Path(marts_path)
    if weeks < 1:
        raise ReportError(f"--weeks must be at least 1, got {weeks}")
    if not marts_path.exists():
        raise ReportError(
            f"no published marts at {marts_path}: run `ringledger run` (or `make demo`) first"
        )
    try:
        con = duckdb.connect(str(marts_path), read_only=True)
    except duckdb.Error as error:
        raise ReportError(f"cannot open {marts_path} read-only: {error}") from error
    with con:
        con.execute("set TimeZone = 'UTC'")
        schemas = {
            row[0]
            for row in con.execute(
                "select schema_name from information_schema.schemata "
                "where catalog_name = current_database()"
            ).fetchall()
        }
        leaked = sorted(schemas.intersection(WAREHOUSE_ONLY_SCHEMAS))
        if leaked:
            raise ReportError(
                f"{marts_path} holds warehouse schemas ({', '.join(leaked)}): the report reads "
                "only the published marts file (default data/ringledger.duckdb), never the "
                "warehouse"
            )
        tables = {
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and table_catalog = current_database()",
                [PUBLISHED_SCHEMA],
            ).fetchall()
        }
        missing = [t for t in REQUIRED_TABLES if t not in tables]
        if missing:
            raise ReportError(
                f"{marts_path} lacks {', '.join(PUBLISHED_SCHEMA + '.' + t for t in missing)}: "
                "is it the published marts file of this version of ringledger?"
            )
        weekly = _frame(
            con,
            "select * from (select * from marts.mart_weekly_summary "
            "order by week_start desc limit ?) order by week_start",
            [weeks],
        )
        if weekly.empty:
            raise ReportError(f"{marts_path}: marts.mart_weekly_summary has no weeks yet")
        first_week = weekly["week_start"].min()
        percentiles = _frame(
            con,
            "select * from marts.mart_callback_delay_percentiles "
            "where hours_segment = 'all' and source = 'all' and week_start >= ? "
            "order by week_start, intent",
            [first_week],
        )
        conversion = _frame(
            con,
            "select * from marts.mart_conversion_by_delay_bucket "
            "order by intent, delay_bucket_sort_order",
        )
        revenue = _frame(
            con,
            "select * from marts.mart_revenue_at_risk where week_start >= ? "
            "order by week_start, intent",
            [first_week],
        )
        as_of = con.execute("select max(as_of_utc) from marts.mart_weekly_summary").fetchone()[0]
        run_ids: set[str] = set()
        if "data_quality_results" in tables:
            run_ids = {
                str(r[0])
                for r in con.execute(
                    "select distinct run_id from marts.data_quality_results"
                ).fetchall()
            }
    published_at = datetime.fromtimestamp(marts_path.stat().st_mtime, tz=UTC).replace(
        tzinfo=None
    )
    return ReportData(
        marts_path=marts_path,
        as_of=as_of,
        published_at=published_at,
        weeks=weeks,
        weekly=weekly,
        percentiles=percentiles,
        conversion=conversion,
        revenue=revenue,
        quality=read_quality(marts_path, run_ids),
    )

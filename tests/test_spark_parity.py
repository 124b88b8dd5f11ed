"""Issue 9: the same dbt models on Spark publish the same marts as on DuckDB.

One small generated sample, run end to end twice (ingest, dbt build, gates, publish): once with
the duckdb engine, once with the spark engine (local in-process Spark). Every mart of the two
published files holds the same rows: exact for text, integers, booleans, dates and instants;
doubles within 1e-9 (percentiles, rates); money within 0.005.

Needs Java 17 and the spark extra (`pip install -e '.[spark]'`): skipped, saying why, where they
are missing, failed under CI=true (.ci/run installs them).
"""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest
from conftest import generate_sample, run_isolated, skip_or_fail

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# Tables of the published marts schema that are not dbt models (gate results of the run).
NOT_MODELS = {"data_quality_results"}
MONEY_TOLERANCE = 0.005
FLOAT_TOLERANCE = 1e-9


def _is_money(column: str) -> bool:
    return column.startswith("revenue_at_risk") or column in {"value_per_conversion", "amount"}


def _published(marts: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    tables: dict[str, tuple[list[str], list[tuple]]] = {}
    with duckdb.connect(str(marts), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' "
                "order by table_name"
            ).fetchall()
        ]
        for name in names:
            if name in NOT_MODELS:
                continue
            cursor = con.execute(f"select * from marts.{name}")
            columns = [d[0] for d in cursor.description]
            tables[name] = (columns, cursor.fetchall())
    return tables


def _sort_key(row: tuple) -> tuple:
    """Order rows the same way on both sides: non-float values first, floats rounded (so a
    last-digit difference cannot swap two rows)."""
    exact = tuple((v is None, v) for v in row if not isinstance(v, float))
    approx = tuple((v is None, round(v, 6) if v is not None else 0.0) for v in row if isinstance(v, float))
    return exact + approx


def _same(column: str, left, right) -> bool:
    if isinstance(left, float) or isinstance(right, float):
        if left is None or right is None:
            return left is None and right is None
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        if _is_money(column):
            return abs(left - right) <= MONEY_TOLERANCE
        return math.isclose(left, right, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
    return left == right


@pytest.fixture(scope="module")
def spark_available() -> None:
    from orchestration.spark import spark_unavailable_reason

    reason = spark_unavailable_reason()
    if reason:
        skip_or_fail(reason)


def test_spark_publishes_the_same_marts_as_duckdb(tmp_path, spark_available):
    landing = tmp_path / "landing"
    generate_sample(landing, days=7, calls_per_day=40)

    published = {}
    for engine in ("duckdb", "spark"):
        root = tmp_path / engine
        outcome = run_isolated(
            landing, root / "warehouse.duckdb", root / "ringledger.duckdb", engine=engine
        )
        assert outcome.exit_code == 0, (engine, outcome.errors, outcome.gate_failures)
        assert outcome.published, engine
        published[engine] = _published(root / "ringledger.duckdb")

    duck, spark = published["duckdb"], published["spark"]
    assert sorted(spark) == sorted(duck)
    assert "fct_missed_call_episodes" in duck and "mart_callback_delay_percentiles" in duck
    differences: list[str] = []
    for table, (columns, duck_rows) in sorted(duck.items()):
        spark_columns, spark_rows = spark[table]
        assert spark_columns == columns, table
        assert len(spark_rows) == len(duck_rows), (table, len(spark_rows), len(duck_rows))
        assert duck_rows or table == "callback_worklist", f"{table} is empty: the sample proves nothing"
        for duck_row, spark_row in zip(
            sorted(duck_rows, key=_sort_key), sorted(spark_rows, key=_sort_key), strict=True
        ):
            for column, left, right in zip(columns, duck_row, spark_row, strict=True):
                if not _same(column, left, right):
                    differences.append(f"{table}.{column}: duckdb {left!r} vs spark {right!r}")
    assert not differences, "\n".join(differences[:40])


def test_unknown_engine_is_a_usage_error(tmp_path):
    from orchestration.runner import EXIT_USAGE, run_pipeline

    outcome = run_pipeline(
        landing=tmp_path / "landing", warehouse=tmp_path / "w.duckdb", engine="oracle"
    )
    assert outcome.exit_code == EXIT_USAGE
    assert "unknown engine" in outcome.errors[0]

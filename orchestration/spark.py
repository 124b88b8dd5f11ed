"""The Spark engine's hand-over with the DuckDB warehouse (docs/scale-out.md).

DuckDB stays the system of record: ingest lands `raw.*` there, the gates and publication read
it. With `--engine spark` the dbt models run on Spark instead:

1. after ingest, every `raw` table is written as Parquet to `<spark dir>/raw/<table>/`, which
   dbt's on-run-start hook declares as external tables in the Spark catalog
   (macros/spark_handover.sql);
2. dbt's on-run-end hook writes every seed and model the run built to
   `<spark dir>/export/<schema>/<name>/`;
3. `import_exports` copies those into the DuckDB warehouse under the same names, so the gates
   and publication see exactly what they see after a DuckDB run.

The spark dir is per warehouse (`.<warehouse stem>.state/spark/`, absolute): Spark's table
files and its Derby metastore live there, and Derby allows one JVM at a time, which the
single-writer run (one step at a time, warehouse lock) guarantees.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

ENGINES = ("duckdb", "spark")


def spark_unavailable_reason() -> str | None:
    """Why the spark engine cannot run here (None when it can)."""
    if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("dbt.adapters.spark") is None:
        return "the spark engine needs the spark extra: pip install -e '.[spark]'"
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home) / "bin" / "java" if java_home else None
    if not ((java and java.exists()) or shutil.which("java")):
        return "the spark engine needs Java 17 (a `java` on PATH or JAVA_HOME)"
    return None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def export_raw_tables(con: duckdb.DuckDBPyConnection, spark_dir: Path) -> dict[str, Path]:
    """Write every table of the warehouse's `raw` schema as Parquet where Spark reads it."""
    target_root = spark_dir / "raw"
    target_root.mkdir(parents=True, exist_ok=True)
    tables = [
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'raw' and table_catalog = current_database() "
            "and table_type = 'BASE TABLE' order by table_name"
        ).fetchall()
    ]
    written: dict[str, Path] = {}
    for table in tables:
        directory = target_root / table
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        path = directory / "data.parquet"
        literal = str(path).replace("'", "''")
        con.execute(f"copy raw.{_quote(table)} to '{literal}' (format parquet)")
        written[table] = path
    return written


def clear_exports(spark_dir: Path) -> None:
    """Forget the previous dbt invocation's hand-over files."""
    export_root = spark_dir / "export"
    if export_root.exists():
        shutil.rmtree(export_root)


def _existing_type(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> str | None:
    row = con.execute(
        "select table_type from information_schema.tables where table_schema = ? "
        "and table_name = ? and table_catalog = current_database()",
        [schema, name],
    ).fetchone()
    return row[0] if row else None


def import_exports(con: duckdb.DuckDBPyConnection, spark_dir: Path) -> dict[str, int]:
    """Copy the relations dbt built on Spark into the DuckDB warehouse (same schema and name,
    as tables). Spark writes instants as UTC-adjusted microseconds, which DuckDB reads as
    TIMESTAMP WITH TIME ZONE: they come back as naive UTC TIMESTAMP, as a DuckDB run writes."""
    export_root = spark_dir / "export"
    counts: dict[str, int] = {}
    if not export_root.exists():
        return counts
    con.execute("set TimeZone = 'UTC'")
    for schema_dir in sorted(p for p in export_root.iterdir() if p.is_dir()):
        schema = schema_dir.name
        con.execute(f"create schema if not exists {_quote(schema)}")
        for relation_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
            name = relation_dir.name
            if not any(relation_dir.glob("*.parquet")):
                raise RuntimeError(f"{relation_dir}: Spark exported no Parquet file for {schema}.{name}")
            source = "read_parquet('" + str(relation_dir / "*.parquet").replace("'", "''") + "')"
            columns = con.execute(f"describe select * from {source}").fetchall()
            select_list = ", ".join(
                f"cast({_quote(col)} as timestamp) as {_quote(col)}"
                if col_type.upper().startswith("TIMESTAMP WITH TIME ZONE")
                else _quote(col)
                for col, col_type, *_ in columns
            )
            qualified = f"{_quote(schema)}.{_quote(name)}"
            existing = _existing_type(con, schema, name)
            if existing == "VIEW":
                con.execute(f"drop view {qualified}")
            con.execute(f"create or replace table {qualified} as select {select_list} from {source}")
            counts[f"{schema}.{name}"] = con.execute(f"select count(*) from {qualified}").fetchone()[0]
    log.info("imported %s relations from Spark into DuckDB", len(counts))
    return counts

"""Tiny landing directories for the ingest tests: write files, ingest them, read `raw` back.

Used by test_ingest.py and test_formats.py; their `config`, `landing` and `con` fixtures are in
conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.config import Config
from orchestration.ingest import ingest_landing
from orchestration.ingest.loader import ENTITY_OTHER_TABLES, ENTITY_TABLES
from orchestration.ingest.schema import SIDE_TABLES

KEY = b"unit-test-key"


def put(landing: Path, rel: str, content: str | bytes) -> Path:
    """Write `content` (text as UTF-8) to `landing/rel`, creating its folders."""
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchall()[0][0]


def _rows_of_file(
    con: duckdb.DuckDBPyConnection, table: str, file: str | None, order_by: str
) -> list[dict]:
    where, params = ("", []) if file is None else (" where file = ?", [file])
    return query(con, f"select * from raw.{table}{where} order by {order_by}", params)


def ledger(con: duckdb.DuckDBPyConnection, file: str | None = None) -> list[dict]:
    """Ledger rows (of one file), oldest load first."""
    return _rows_of_file(con, "load_ledger", file, "load_seq")


def rejects(con: duckdb.DuckDBPyConnection, file: str | None = None) -> list[dict]:
    """Rejected rows (of one file), by file and line."""
    return _rows_of_file(con, "rejected_rows", file, "file, line_number")


def reject_reasons(con: duckdb.DuckDBPyConnection, file: str) -> list[tuple[int, str]]:
    return [(r["line_number"], r["reason"]) for r in rejects(con, file)]


def legs_by_id(con: duckdb.DuckDBPyConnection, file: str | None = None) -> dict[str, dict]:
    sql, params = "select * from raw.telephony_legs", []
    if file is not None:
        sql, params = sql + " where _file = ?", [file]
    return {r["call_id"]: r for r in query(con, sql, params)}


def assert_counts_consistent(con: duckdb.DuckDBPyConnection) -> None:
    """rows_read = rows_loaded + rows_rejected, and the tables agree with the ledger."""
    for row in ledger(con):
        load_id = row["load_id"]
        assert row["rows_read"] == row["rows_loaded"] + row["rows_rejected"], row
        n_rejects = scalar(
            con, "select count(*) from raw.rejected_rows where load_id = ?", [load_id]
        )
        assert n_rejects == row["rows_rejected"], row
        if row["status"] == "loaded" and row["entity"] is not None:
            entity = row["entity"]
            tables = (ENTITY_TABLES[entity], *ENTITY_OTHER_TABLES.get(entity, ()))
            n_rows = sum(
                scalar(con, f"select count(*) from raw.{table} where _load_id = ?", [load_id])
                for table in tables
                if table not in SIDE_TABLES  # per-file checks, not rows of the file
            )
            assert n_rows == row["rows_loaded"], row


def ingest(con: duckdb.DuckDBPyConnection, landing: Path, config: Config, key: bytes = KEY):
    """ingest_landing, then check the ledger against the tables."""
    summary = ingest_landing(con, landing, config, key)
    assert_counts_consistent(con)
    return summary

"""DDL of the `raw` schema (docs/architecture.md, "Raw tables"): names and types are a contract.

Every data table holds the export columns as VARCHAR exactly as read (an empty cell is an
empty string, never NULL), the normalized columns computed at load, then the load metadata
`_file`, `_line`, `_load_id`, `_load_seq`. The CRM and marketing tables are derived from their
entity specs (`entities.ENTITIES`), which the CRM reader uses too.
"""

from __future__ import annotations

import duckdb

from orchestration.ingest.entities import (  # noqa: F401  (PHONE_SUFFIXES: re-exported)
    ENTITIES,
    PHONE_SUFFIXES,
    phone_columns,
    timestamp_column,
)

SCHEMA = "raw"

META_COLUMNS: list[tuple[str, str]] = [
    ("_file", "VARCHAR"),
    ("_line", "BIGINT"),
    ("_load_id", "VARCHAR"),
    ("_load_seq", "BIGINT"),
]


def _varchar(*names: str) -> list[tuple[str, str]]:
    return [(n, "VARCHAR") for n in names]


# -- export columns (the generic layouts of inputs-and-outputs.md) ----------------------------
LEG_EXPORT_COLUMNS: tuple[str, ...] = (
    "call_id",
    "parent_call_id",
    "direction",
    "started_at",
    "answered_at",
    "ended_at",
    "from_number",
    "to_number",
    "status",
    "queue",
    "ivr_selection",
    "agent_id",
    "disposition",
    "site",
    "talk_seconds",
)

# queue_log: `epoch|callid|queue|agent|EVENT|data1..5`.
QUEUE_EVENT_COLUMNS: tuple[str, ...] = (
    "epoch",
    "callid",
    "queue",
    "agent",
    "event",
    "data1",
    "data2",
    "data3",
    "data4",
    "data5",
)

# Phone columns of a leg (normalized at load, re-keyed when the hash key changes).
LEG_PHONES: tuple[str, ...] = ("from_number", "to_number")

# Per-row normalized columns of a leg, in the order the telephony readers produce them.
LEG_ROW_NORMALIZED: list[tuple[str, str]] = [
    ("site_resolved", "VARCHAR"),
    ("status_normalized", "VARCHAR"),
    ("direction_normalized", "VARCHAR"),
    timestamp_column("started_at"),
    timestamp_column("answered_at"),
    timestamp_column("ended_at"),
    ("talk_seconds_num", "DOUBLE"),
    *(pair for column in LEG_PHONES for pair in phone_columns(column)),
]
# Per-file constants of a leg.
LEG_FILE_CONSTANTS: list[tuple[str, str]] = [
    ("source_format", "VARCHAR"),
    ("source_system", "VARCHAR"),
]

TABLES: dict[str, list[tuple[str, str]]] = {
    "telephony_legs": [
        *_varchar(*LEG_EXPORT_COLUMNS),
        *LEG_FILE_CONSTANTS,
        *LEG_ROW_NORMALIZED,
        *META_COLUMNS,
    ],
    # CRM and marketing exports: declared once, by their entity specs (entities.py).
    **{spec.table: [*spec.table_columns, *META_COLUMNS] for spec in ENTITIES.values()},
    "crm_contact_identities": [
        ("contact_id", "VARCHAR"),
        ("identity_id", "VARCHAR"),
        ("identity_size", "INTEGER"),
    ],
    "load_ledger": [
        ("file", "VARCHAR"),
        ("content_hash", "VARCHAR"),
        ("load_id", "VARCHAR"),
        ("loaded_at", "TIMESTAMP"),
        ("format", "VARCHAR"),
        ("rows_read", "BIGINT"),
        ("rows_loaded", "BIGINT"),
        ("rows_rejected", "BIGINT"),
        ("status", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("entity", "VARCHAR"),
        ("load_seq", "BIGINT"),
    ],
    "rejected_rows": [
        ("load_id", "VARCHAR"),
        ("file", "VARCHAR"),
        ("line_number", "BIGINT"),
        ("raw_text", "VARCHAR"),
        ("reason", "VARCHAR"),
    ],
    # Asterisk queue_log events (orchestration/ingest/queue_log.py), read as text; the
    # intermediate model int_asterisk_queue_calls joins them to CDR calls on callid = uniqueid.
    "asterisk_queue_events": [
        *_varchar(*QUEUE_EVENT_COLUMNS),
        ("source_system", "VARCHAR"),
        ("event_at_utc", "TIMESTAMP"),
        *META_COLUMNS,
    ],
    # One row per loaded Asterisk CDR file with uniqueids: the median of (start read with the
    # configured clock, in UTC) minus the uniqueid epoch; the timezone_offset gate reads it.
    "asterisk_clock_checks": [
        ("source_system", "VARCHAR"),
        ("site", "VARCHAR"),
        ("telephony_clock", "VARCHAR"),
        ("legs_compared", "BIGINT"),
        ("median_offset_seconds", "DOUBLE"),
        *META_COLUMNS,
    ],
    # Not part of the dbt contract: the fingerprint of the hashing key the stored `*_key`
    # columns were computed with (see normalize.rekey_if_needed), and what the contact
    # identities were built from (identity.refresh_contact_identities).
    "ingest_meta": [
        ("name", "VARCHAR"),
        ("value", "VARCHAR"),
    ],
    # Not part of the dbt contract: every canonical phone key the columnar ingest mapped, with
    # its E.164 (null: not a valid number) and that E.164's HMAC, for the next ingests
    # (phonemap.load_seen_keys; not used after a phonenumbers upgrade, emptied when the hashing
    # key changes: loader.rekey_if_needed).
    "phone_keys": [
        ("canon", "VARCHAR"),
        ("region", "VARCHAR"),
        ("e164", "VARCHAR"),
        ("e164_key", "VARCHAR"),
    ],
}

DATA_TABLES: tuple[str, ...] = (
    "telephony_legs",
    *(spec.table for spec in ENTITIES.values()),
    "asterisk_queue_events",
)

# Tables whose rows a file may write besides its main table (deleted with it on supersession).
SIDE_TABLES: tuple[str, ...] = ("asterisk_clock_checks",)

# Phone columns of each data table (for re-keying).
PHONE_COLUMNS: dict[str, tuple[str, ...]] = {
    "telephony_legs": LEG_PHONES,
    **{spec.table: spec.phones for spec in ENTITIES.values() if spec.phones},
}


def column_names(table: str) -> list[str]:
    return [name for name, _ in TABLES[table]]


def read_meta(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The value stored under `name` in raw.ingest_meta, None when there is none."""
    rows = con.execute("SELECT value FROM raw.ingest_meta WHERE name = ?", [name]).fetchall()
    return rows[0][0] if rows else None


def write_meta(con: duckdb.DuckDBPyConnection, name: str, value: str) -> None:
    """Store `value` under `name` in raw.ingest_meta (in the caller's transaction, if any)."""
    con.execute("DELETE FROM raw.ingest_meta WHERE name = ?", [name])
    con.execute("INSERT INTO raw.ingest_meta VALUES (?, ?)", [name, value])


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema `raw` and every raw table (empty) if missing."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for table, columns in TABLES.items():
        cols = ", ".join(f"{name} {typ}" for name, typ in columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{table} ({cols})")

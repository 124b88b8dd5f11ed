"""DDL of the `raw` schema (docs/architecture.md, "Raw tables"): names and types are a contract.

Every data table holds the export columns as VARCHAR exactly as read (an empty cell is an
empty string, never NULL), the normalized columns computed at load, then the load metadata
`_file`, `_line`, `_load_id`, `_load_seq`.
"""

from __future__ import annotations

import duckdb

SCHEMA = "raw"

META_COLUMNS: list[tuple[str, str]] = [
    ("_file", "VARCHAR"),
    ("_line", "BIGINT"),
    ("_load_id", "VARCHAR"),
    ("_load_seq", "BIGINT"),
]

PHONE_SUFFIXES: list[tuple[str, str]] = [
    ("_e164", "VARCHAR"),
    ("_is_valid", "BOOLEAN"),
    ("_is_unknown", "BOOLEAN"),
    ("_key", "VARCHAR"),
    ("_digits", "INTEGER"),
]


def phone_columns(col: str) -> list[tuple[str, str]]:
    return [(f"{col}{suffix}", typ) for suffix, typ in PHONE_SUFFIXES]


def timestamp_column(col: str) -> tuple[str, str]:
    return (f"{col}_utc", "TIMESTAMP")


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

# Per-row normalized columns of a leg, in the order the telephony readers produce them.
LEG_ROW_NORMALIZED: list[tuple[str, str]] = [
    ("site_resolved", "VARCHAR"),
    ("status_normalized", "VARCHAR"),
    ("direction_normalized", "VARCHAR"),
    ("started_at_utc", "TIMESTAMP"),
    ("answered_at_utc", "TIMESTAMP"),
    ("ended_at_utc", "TIMESTAMP"),
    ("talk_seconds_num", "DOUBLE"),
    *phone_columns("from_number"),
    *phone_columns("to_number"),
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
    "crm_contacts": [
        *_varchar(
            "contact_id",
            "phone",
            "mobile_phone",
            "email",
            "created_at",
            "updated_at",
            "lifecycle",
            "owner",
        ),
        *phone_columns("phone"),
        *phone_columns("mobile_phone"),
        timestamp_column("created_at"),
        timestamp_column("updated_at"),
        *META_COLUMNS,
    ],
    "crm_opportunities": [
        *_varchar(
            "opportunity_id",
            "contact_id",
            "created_at",
            "stage",
            "amount",
            "closed_at",
            "is_won",
            "is_closed",
        ),
        timestamp_column("created_at"),
        timestamp_column("closed_at"),
        *META_COLUMNS,
    ],
    "crm_activities": [
        *_varchar(
            "activity_id",
            "contact_id",
            "activity_type",
            "logged_at",
            "phone",
            "pbx_call_id",
            "disposition",
            "duration_seconds",
        ),
        *phone_columns("phone"),
        timestamp_column("logged_at"),
        *META_COLUMNS,
    ],
    "crm_form_submissions": [
        *_varchar(
            "submission_id",
            "submitted_at",
            "phone",
            "email",
            "form_type",
            "source",
            "campaign",
        ),
        *phone_columns("phone"),
        timestamp_column("submitted_at"),
        *META_COLUMNS,
    ],
    "marketing_tracking_numbers": [
        *_varchar(
            "tracking_number",
            "campaign",
            "source",
            "channel",
            "default_intent",
            "valid_from",
            "valid_to",
        ),
        *phone_columns("tracking_number"),
        timestamp_column("valid_from"),
        timestamp_column("valid_to"),
        *META_COLUMNS,
    ],
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
    # columns were computed with (see normalize.rekey_if_needed).
    "ingest_meta": [
        ("name", "VARCHAR"),
        ("value", "VARCHAR"),
    ],
}

DATA_TABLES: tuple[str, ...] = (
    "telephony_legs",
    "crm_contacts",
    "crm_opportunities",
    "crm_activities",
    "crm_form_submissions",
    "marketing_tracking_numbers",
    "asterisk_queue_events",
)

# Tables whose rows a file may write besides its main table (deleted with it on supersession).
SIDE_TABLES: tuple[str, ...] = ("asterisk_clock_checks",)

# Phone columns of each data table (for re-keying).
PHONE_COLUMNS: dict[str, tuple[str, ...]] = {
    "telephony_legs": ("from_number", "to_number"),
    "crm_contacts": ("phone", "mobile_phone"),
    "crm_activities": ("phone",),
    "crm_form_submissions": ("phone",),
    "marketing_tracking_numbers": ("tracking_number",),
}


def column_names(table: str) -> list[str]:
    return [name for name, _ in TABLES[table]]


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema `raw` and every raw table (empty) if missing."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for table, columns in TABLES.items():
        cols = ", ".join(f"{name} {typ}" for name, typ in columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{table} ({cols})")

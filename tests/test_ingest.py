"""Ingest of a landing directory into schema `raw` (orchestration/ingest)."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import logging
import os
import re
import stat
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from ingest_helpers import KEY, ingest, ledger, legs_by_id, put, query, rejects, scalar

from orchestration.config import load_config
from orchestration.ingest import (
    HASH_KEY_ENV,
    TELEPHONY_FORMATS,
    detect_format,
    hash_key_path,
    ingest_landing,
    resolve_hash_key,
)
from orchestration.ingest import loader as loader_module
from orchestration.ingest.identity import merge_identities

HEADER = (
    "call_id,parent_call_id,direction,started_at,answered_at,ended_at,from_number,to_number,"
    "status,queue,ivr_selection,agent_id,disposition,site,talk_seconds"
)
CONTACTS_HEADER = "contact_id,phone,mobile_phone,email,created_at,updated_at,lifecycle,owner"


# -- helpers ------------------------------------------------------------------------------


def leg(
    call_id: str,
    *,
    started: str = "2025-01-06 09:00:00",
    answered: str = "",
    ended: str = "2025-01-06 09:05:00",
    from_number: str = "(212) 555-0100",
    to_number: str = "+12125550101",
    status: str = "no_answer",
    direction: str = "inbound",
    queue: str = "sales",
    site: str = "",
    talk: str = "",
    parent: str = "",
) -> str:
    return ",".join(
        [call_id, parent, direction, started, answered, ended, from_number, to_number, status]
        + [queue, "1", "", "", site, talk]
    )


def csv_text(header: str, *lines: str, newline: str = "\n") -> str:
    return newline.join([header, *lines]) + newline


def hmac_hex(text: str, key: bytes = KEY) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


# -- tables -------------------------------------------------------------------------------

EXPECTED_LEG_COLUMNS = [
    ("call_id", "VARCHAR"),
    ("parent_call_id", "VARCHAR"),
    ("direction", "VARCHAR"),
    ("started_at", "VARCHAR"),
    ("answered_at", "VARCHAR"),
    ("ended_at", "VARCHAR"),
    ("from_number", "VARCHAR"),
    ("to_number", "VARCHAR"),
    ("status", "VARCHAR"),
    ("queue", "VARCHAR"),
    ("ivr_selection", "VARCHAR"),
    ("agent_id", "VARCHAR"),
    ("disposition", "VARCHAR"),
    ("site", "VARCHAR"),
    ("talk_seconds", "VARCHAR"),
    ("source_format", "VARCHAR"),
    ("source_system", "VARCHAR"),
    ("site_resolved", "VARCHAR"),
    ("status_normalized", "VARCHAR"),
    ("direction_normalized", "VARCHAR"),
    ("started_at_utc", "TIMESTAMP"),
    ("answered_at_utc", "TIMESTAMP"),
    ("ended_at_utc", "TIMESTAMP"),
    ("talk_seconds_num", "DOUBLE"),
    ("from_number_e164", "VARCHAR"),
    ("from_number_is_valid", "BOOLEAN"),
    ("from_number_is_unknown", "BOOLEAN"),
    ("from_number_key", "VARCHAR"),
    ("from_number_digits", "INTEGER"),
    ("to_number_e164", "VARCHAR"),
    ("to_number_is_valid", "BOOLEAN"),
    ("to_number_is_unknown", "BOOLEAN"),
    ("to_number_key", "VARCHAR"),
    ("to_number_digits", "INTEGER"),
    ("_file", "VARCHAR"),
    ("_line", "BIGINT"),
    ("_load_id", "VARCHAR"),
    ("_load_seq", "BIGINT"),
]


ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def raw_tables_section() -> str:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    return text[text.index("## Raw tables") :].split("\n## ", 1)[0]


def documented_raw_tables() -> list[str]:
    return re.findall(r"^\| `raw\.(\w+)` \|", raw_tables_section(), re.MULTILINE)


def documented_crm_columns() -> dict[str, list[tuple[str, str]]]:
    """The CRM/marketing tables as docs/architecture.md ("Raw tables") states them.

    The export columns as VARCHAR in the documented order, then the normalized columns in the
    order the section gives the rules (phone columns, then timestamps), then the load metadata.
    """
    section = raw_tables_section()
    meta_names = re.findall(r"`(_\w+)`\s+\(", section.split("Normalized columns", 1)[0])
    meta = EXPECTED_LEG_COLUMNS[-len(meta_names) :]  # the same on every data table
    assert [name for name, _ in meta] == meta_names
    phone_rule, stamp_rule = section.split("- phone `<col>`", 1)[1].split("- timestamp `<col>`", 1)
    suffixes = re.findall(r"`<col>(_\w+)`\s+\((\w+)", phone_rule)
    [(stamp_suffix, stamp_type)] = re.findall(r"`<col>(_\w+)`\s+\((\w+)", stamp_rule)
    tables = {}
    for table, exports, normalized in re.findall(
        r"^\| `raw\.((?:crm|marketing)_\w+)` \| `([^`]+)` \| (.*?) \|$", section, re.MULTILINE
    ):
        phone_list = re.search(r"phone col(?:umn)?s for ((?:`\w+`(?:, )?)+)", normalized)
        phones = re.findall(r"`(\w+)`", phone_list.group(1)) if phone_list else []
        rest = normalized.replace(phone_list.group(0), "") if phone_list else normalized
        stamps = re.findall(r"`(\w+)`", rest)
        assert all(name.endswith(stamp_suffix) for name in stamps), (table, stamps)
        tables[table] = [
            *((name, "VARCHAR") for name in exports.split(", ")),
            *((f"{phone}{suffix}", typ) for phone in phones for suffix, typ in suffixes),
            *((name, stamp_type) for name in stamps),
            *meta,
        ]
    return tables


def columns(con, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"describe raw.{table}").fetchall()]


def test_every_raw_table_exists_without_any_file(con, landing, config):
    summary = ingest(con, landing, config)
    assert summary.files_seen == 0
    assert columns(con, "telephony_legs") == EXPECTED_LEG_COLUMNS
    assert columns(con, "crm_contact_identities") == [
        ("contact_id", "VARCHAR"),
        ("identity_id", "VARCHAR"),
        ("identity_size", "INTEGER"),
    ]
    assert columns(con, "load_ledger") == [
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
    ]
    assert columns(con, "rejected_rows") == [
        ("load_id", "VARCHAR"),
        ("file", "VARCHAR"),
        ("line_number", "BIGINT"),
        ("raw_text", "VARCHAR"),
        ("reason", "VARCHAR"),
    ]
    for table in documented_raw_tables():
        assert scalar(con, f"select count(*) from raw.{table}") == 0
    # the connection is left with no open result (DuckDB 2.0 would refuse con.sql otherwise)
    assert con.sql("select 1").fetchall() == [(1,)]


def test_crm_tables_match_the_documented_contract(con, landing, config):
    """The DDL derived from the entity specs is the one docs/architecture.md promises."""
    documented = documented_crm_columns()
    assert set(documented) == {
        "crm_contacts",
        "crm_opportunities",
        "crm_activities",
        "crm_form_submissions",
        "marketing_tracking_numbers",
    }
    ingest(con, landing, config)
    for table, expected in documented.items():
        assert columns(con, table) == expected, table


def test_missing_landing_dir_is_an_error(con, tmp_path, config):
    with pytest.raises(FileNotFoundError):
        ingest_landing(con, tmp_path / "nope", config, KEY)


# -- normalization ------------------------------------------------------------------------


def test_phone_numbers_normalized(con, landing, config):
    numbers = {
        "p1": "(212) 555-0100",
        "p2": "+1 212.555.0100",
        "p3": "12125550100",
        "p4": "212-555-0100 x123",
        "bad": "(555) 212-0100",
        "anon": "Anonymous",
        "empty": "",
        "marker": "  WITHHELD ",
        "ext": "1234",
        "letters": "call me",
        "vanity": "1-800-FLOWERS",
        "extword": "212 555 0100 ext. 4",
        "fourty": "1" * 40,
    }
    put(
        landing,
        "telephony/calls.csv",
        csv_text(HEADER, *(leg(cid, from_number=num) for cid, num in numbers.items())),
    )
    ingest(con, landing, config)
    legs = legs_by_id(con)
    for cid in ("p1", "p2", "p3", "p4", "extword"):
        assert legs[cid]["from_number_e164"] == "+12125550100", cid
        assert legs[cid]["from_number_is_valid"] is True
        assert legs[cid]["from_number_is_unknown"] is False
        assert legs[cid]["from_number_key"] == hmac_hex("+12125550100")
    assert legs["p4"]["from_number"] == "212-555-0100 x123"  # raw text kept
    assert legs["p4"]["from_number_digits"] == 13
    assert legs["p1"]["from_number_digits"] == 10
    for cid in ("bad", "ext", "letters", "vanity", "fourty"):
        assert legs[cid]["from_number_e164"] is None, cid
        assert legs[cid]["from_number_is_valid"] is False
        assert legs[cid]["from_number_is_unknown"] is False
        assert legs[cid]["from_number_key"] == hmac_hex(numbers[cid].strip())
    assert legs["ext"]["from_number_digits"] == 4
    assert legs["letters"]["from_number_digits"] == 0
    for cid in ("anon", "empty", "marker"):
        assert legs[cid]["from_number_e164"] is None, cid
        assert legs[cid]["from_number_is_valid"] is False
        assert legs[cid]["from_number_is_unknown"] is True
        assert legs[cid]["from_number_key"] is None
    assert legs["empty"]["from_number"] == ""  # empty string, never NULL
    assert legs["p1"]["to_number_e164"] == "+12125550101"


def test_timestamps_converted_to_utc(con, landing, config):
    put(
        landing,
        "telephony/calls.csv",
        csv_text(
            HEADER,
            # winter (EST, UTC-5) and summer (EDT, UTC-4) local times of site nyc
            leg("winter", started="2025-01-06 09:00:00", ended="2025-01-06T09:05:00"),
            leg("summer", started="2025-07-07 09:00:00", ended="2025-07-07 09:05:00"),
            # offsets: converted whatever the site
            leg("zulu", started="2025-01-06T14:00:00Z", ended="2025-01-06T14:05:00Z"),
            leg("plus", started="2025-01-06T19:30:00+05:30", ended="2025-01-06T19:35:00+0530"),
            leg("micro", started="2025-01-06 09:00:00.123456", ended="2025-01-06 09:00:01.5"),
            leg("nano", started="2025-01-06T14:00:00.1234567Z", ended="2025-01-06T14:00:01Z"),
            # DST overlap (2025-11-02 01:00-02:00 happens twice): the earlier instant (EDT)
            leg("overlap", started="2025-11-02 01:30:00", ended="2025-11-02 01:35:00"),
            # explicit site column: lax is America/Los_Angeles
            leg("lax", started="2025-01-06 09:00:00", ended="2025-01-06 09:05:00", site="lax"),
        ),
    )
    ingest(con, landing, config)
    legs = legs_by_id(con)
    assert legs["winter"]["started_at_utc"] == datetime(2025, 1, 6, 14, 0)
    assert legs["winter"]["ended_at_utc"] == datetime(2025, 1, 6, 14, 5)
    assert legs["summer"]["started_at_utc"] == datetime(2025, 7, 7, 13, 0)
    assert legs["zulu"]["started_at_utc"] == datetime(2025, 1, 6, 14, 0)
    assert legs["plus"]["started_at_utc"] == datetime(2025, 1, 6, 14, 0)
    assert legs["plus"]["ended_at_utc"] == datetime(2025, 1, 6, 14, 5)
    assert legs["micro"]["started_at_utc"] == datetime(2025, 1, 6, 14, 0, 0, 123456)
    assert legs["micro"]["ended_at_utc"] == datetime(2025, 1, 6, 14, 0, 1, 500000)
    assert legs["nano"]["started_at_utc"] == datetime(2025, 1, 6, 14, 0, 0, 123456)
    assert legs["overlap"]["started_at_utc"] == datetime(2025, 11, 2, 5, 30)
    assert legs["lax"]["started_at_utc"] == datetime(2025, 1, 6, 17, 0)
    assert legs["lax"]["site_resolved"] == "lax"
    assert legs["winter"]["site_resolved"] == "nyc"  # telephony_sources `*` -> nyc
    assert legs["winter"]["source_system"] == "generic"
    assert legs["winter"]["source_format"] == "generic"
    assert legs["winter"]["started_at"] == "2025-01-06 09:00:00"  # text kept as read


def test_dst_gap_rejected(con, landing, config):
    put(
        landing,
        "telephony/calls.csv",
        csv_text(
            HEADER,
            leg("gap", started="2025-03-09 02:30:00", ended="2025-03-09 03:05:00"),
            leg("before", started="2025-03-09 01:59:59", ended="2025-03-09 03:00:00"),
        ),
    )
    ingest(con, landing, config)
    legs = legs_by_id(con)
    assert set(legs) == {"before"}
    assert legs["before"]["started_at_utc"] == datetime(2025, 3, 9, 6, 59, 59)
    assert legs["before"]["ended_at_utc"] == datetime(2025, 3, 9, 7, 0)
    [reject] = rejects(con)
    assert "local time in DST gap" in reject["reason"]
    assert reject["line_number"] == 2


def test_site_clock_utc_and_telephony_sources(con, landing, config):
    for row in config.seeds["sites"]:
        if row["site"] == "lax":
            row["telephony_clock"] = "utc"
    config.seeds["telephony_sources"] = [
        {
            "pattern": "west/*",
            "format": "auto",
            "source_system": "pbx-west",
            "site": "lax",
            "inbound_contexts": "",
            "outbound_contexts": "",
            "columns": "",
        },
        {
            "pattern": "*",
            "format": "auto",
            "source_system": "",
            "site": "",
            "inbound_contexts": "",
            "outbound_contexts": "",
            "columns": "",
        },
    ]
    put(landing, "telephony/west/calls.csv", csv_text(HEADER, leg("w1"), leg("w2", site="nyc")))
    put(landing, "telephony/calls.csv", csv_text(HEADER, leg("e1"), leg("bad", site="paris")))
    ingest(con, landing, config)
    legs = legs_by_id(con)
    assert legs["w1"]["site_resolved"] == "lax"
    assert legs["w1"]["source_system"] == "pbx-west"
    assert legs["w1"]["started_at_utc"] == datetime(2025, 1, 6, 9, 0)  # lax clock is UTC
    assert legs["w2"]["site_resolved"] == "nyc"  # the row's site column wins
    assert legs["w2"]["started_at_utc"] == datetime(2025, 1, 6, 14, 0)
    assert legs["e1"]["site_resolved"] == "nyc"  # no site anywhere: the default (first) site
    assert legs["e1"]["source_system"] == "generic"
    assert [r["reason"] for r in rejects(con)] == ["unknown site 'paris'"]


def test_crm_timestamps_use_crm_timezone(con, landing, config):
    put(
        landing,
        "crm/contacts.csv",
        csv_text(CONTACTS_HEADER, "k1,,,,2025-01-06 09:00:00,2025-01-07,lead,", "k2,,,,,,lead,"),
    )
    ingest(con, landing, config)
    rows = {r["contact_id"]: r for r in query(con, "select * from raw.crm_contacts")}
    assert rows["k1"]["created_at_utc"] == datetime(2025, 1, 6, 9, 0)  # default crm_timezone UTC
    assert rows["k1"]["updated_at_utc"] == datetime(2025, 1, 7, 0, 0)  # bare date: 00:00
    assert rows["k2"]["created_at_utc"] is None
    assert rows["k2"]["created_at"] == ""

    config.vars["crm_timezone"] = "America/New_York"
    put(landing, "crm/contacts_ny.csv", csv_text(CONTACTS_HEADER, "k3,,,,2025-07-07 09:00:00,,,"))
    ingest(con, landing, config)
    created = scalar(con, "select created_at_utc from raw.crm_contacts where contact_id = 'k3'")
    assert created == datetime(2025, 7, 7, 13, 0)


def test_status_direction_and_talk_seconds(con, landing, config):
    put(
        landing,
        "telephony/calls.csv",
        csv_text(
            HEADER,
            leg("a", status="No-Answer"),
            leg("b", status="NO ANSWER", direction="Inbound"),
            leg("c", status=" voicemail "),
            leg("d", status="Answered", direction="OUTBOUND", answered="2025-01-06 09:00:30"),
            leg("e", status="answered", answered="2025-01-06 09:00:30", talk="12.5"),
            leg("f", status="CANCELED"),
        ),
    )
    ingest(con, landing, config)
    legs = legs_by_id(con)
    assert legs["a"]["status_normalized"] == "no_answer"
    assert legs["b"]["status_normalized"] == "no_answer"
    assert legs["b"]["direction_normalized"] == "inbound"
    assert legs["c"]["status_normalized"] == "voicemail"
    assert legs["d"]["direction_normalized"] == "outbound"
    assert legs["d"]["talk_seconds_num"] == 270.0  # ended - answered
    assert legs["e"]["talk_seconds_num"] == 12.5  # given
    assert legs["a"]["talk_seconds_num"] is None  # not answered
    assert legs["f"]["status_normalized"] == "canceled"
    assert legs["a"]["status"] == "No-Answer"


# -- ledger -------------------------------------------------------------------------------


def test_redelivery_is_a_noop(con, landing, config):
    put(landing, "telephony/calls.csv", csv_text(HEADER, leg("c1"), leg("c2")))
    first = ingest(con, landing, config)
    assert (first.files_seen, first.files_loaded, first.rows_read, first.rows_loaded) == (
        1,
        1,
        2,
        2,
    )
    assert first.rows_loaded_by_table["telephony_legs"] == 2
    second = ingest(con, landing, config)
    assert second.files_seen == 1
    assert second.files_skipped_unchanged == 1
    assert (second.files_loaded, second.rows_read, second.rows_loaded) == (0, 0, 0)
    assert len(ledger(con)) == 1
    assert scalar(con, "select count(*) from raw.telephony_legs") == 2
    assert second.table_row_counts["telephony_legs"] == 2


def test_same_content_under_another_name_loads_nothing_twice(con, landing, config):
    content = csv_text(HEADER, leg("c1"), leg("c2"))
    put(landing, "telephony/calls.csv", content)
    ingest(con, landing, config)
    put(landing, "telephony/calls (1).csv", content)
    summary = ingest(con, landing, config)
    assert summary.files_loaded == 1
    assert summary.rows_read == 0
    dup = ledger(con, "telephony/calls (1).csv")
    assert len(dup) == 1
    assert dup[0]["status"] == "loaded"
    assert dup[0]["reason"] == "duplicate of telephony/calls.csv"
    assert (dup[0]["rows_read"], dup[0]["rows_loaded"], dup[0]["rows_rejected"]) == (0, 0, 0)
    assert dup[0]["content_hash"] == ledger(con, "telephony/calls.csv")[0]["content_hash"]
    assert scalar(con, "select count(*) from raw.telephony_legs") == 2
    again = ingest(con, landing, config)
    assert again.files_skipped_unchanged == 2


def test_corrected_file_supersedes_and_retraction(con, landing, config):
    put(landing, "telephony/calls.csv", csv_text(HEADER, leg("c1"), leg("c2")))
    ingest(con, landing, config)
    old = ledger(con)[0]

    put(landing, "telephony/calls.csv", csv_text(HEADER, leg("c1", status="busy"), leg("c3")))
    summary = ingest(con, landing, config)
    assert summary.files_superseded == 1
    assert summary.files_loaded == 1
    rows = ledger(con, "telephony/calls.csv")
    assert [r["status"] for r in rows] == ["superseded", "loaded"]
    assert rows[0]["load_id"] == old["load_id"]
    assert rows[1]["content_hash"] != old["content_hash"]
    assert rows[1]["load_seq"] > rows[0]["load_seq"]
    legs = legs_by_id(con)
    assert set(legs) == {"c1", "c3"}  # c2 went with the old rows
    assert legs["c1"]["status_normalized"] == "busy"
    assert legs["c1"]["_load_id"] == rows[1]["load_id"]
    assert legs["c1"]["_load_seq"] == rows[1]["load_seq"]

    # a header-only file of the same name retracts the rows
    put(landing, "telephony/calls.csv", HEADER + "\n")
    summary = ingest(con, landing, config)
    assert summary.files_superseded == 1
    rows = ledger(con, "telephony/calls.csv")
    assert [r["status"] for r in rows] == ["superseded", "superseded", "loaded"]
    assert (rows[-1]["rows_read"], rows[-1]["rows_loaded"]) == (0, 0)
    assert scalar(con, "select count(*) from raw.telephony_legs") == 0

    # removing the file retracts nothing
    put(landing, "telephony/more.csv", csv_text(HEADER, leg("m1")))
    ingest(con, landing, config)
    (landing / "telephony" / "more.csv").unlink()
    summary = ingest(con, landing, config)
    assert summary.files_seen == 1
    assert set(legs_by_id(con)) == {"m1"}
    assert ledger(con, "telephony/more.csv")[0]["status"] == "loaded"


def test_header_only_new_file_loads_zero_rows(con, landing, config):
    put(landing, "crm/opportunities.csv", "opportunity_id,contact_id,created_at,stage\r\n")
    summary = ingest(con, landing, config)
    assert summary.files_loaded == 1
    [row] = ledger(con)
    assert row["status"] == "loaded"
    assert row["reason"] is None
    assert (row["rows_read"], row["rows_loaded"], row["rows_rejected"]) == (0, 0, 0)
    assert row["entity"] == "opportunities"
    assert row["format"] == "csv"


def test_load_seq_follows_file_names_and_runs(con, landing, config):
    put(landing, "telephony/calls_b.csv", csv_text(HEADER, leg("b1")))
    put(landing, "telephony/calls_a.csv", csv_text(HEADER, leg("a1")))
    put(landing, "crm/contacts.csv", csv_text(CONTACTS_HEADER, "k1,,,,2025-01-01,,,"))
    ingest(con, landing, config)
    order = [(r["file"], r["load_seq"]) for r in ledger(con)]
    assert order == [
        ("crm/contacts.csv", 1),
        ("telephony/calls_a.csv", 2),
        ("telephony/calls_b.csv", 3),
    ]
    legs = legs_by_id(con)
    assert legs["a1"]["_load_seq"] == 2
    assert legs["b1"]["_load_seq"] == 3
    assert legs["a1"]["_file"] == "telephony/calls_a.csv"
    assert legs["a1"]["_line"] == 2
    put(landing, "telephony/calls_0.csv", csv_text(HEADER, leg("z1")))
    ingest(con, landing, config)
    assert legs_by_id(con)["z1"]["_load_seq"] == 4  # a later run: a larger number


# -- refusals -----------------------------------------------------------------------------


def test_refusals(con, landing, config):
    good = csv_text(HEADER, leg("ok1"))
    put(landing, "telephony/a_good.csv", good)
    put(landing, "telephony/empty.csv", b"")
    put(landing, "telephony/fake.csv.gz", good)
    put(landing, "telephony/zipped.csv.gz", gzip.compress(csv_text(HEADER, leg("gz1")).encode()))
    put(landing, "telephony/twilio.csv", "Sid,From,To,Direction,Status\nCA1,+1,+2,inbound,busy\n")
    put(
        landing,
        "telephony/no_status.csv",
        "call_id,direction,started_at,ended_at,from_number,to_number\n",
    )
    put(landing, "telephony/blank.csv", "\n\n")
    put(landing, "telephony/notes.txt", "hello")
    (landing / "telephony" / "folder.csv").mkdir()
    put(landing, "telephony/.hidden.csv", b"")
    put(landing, "crm/contacts_nohead.csv", "k1,+12125550100,,,2025-01-01,,,\n")
    put(landing, "crm/contacts_nocreated.csv", "contact_id,phone\nk1,+12125550100\n")
    put(landing, "crm/deals.csv", "deal_id\n1\n")
    put(
        landing,
        "marketing/tracking_numbers.csv",
        "tracking_number,campaign,valid_from\n+12125550101,brand,2025-01-01\n",
    )

    summary = ingest(con, landing, config)
    refused = dict(summary.files_refused)
    assert refused == {
        "telephony/empty.csv": "empty file",
        "telephony/fake.csv.gz": "not gzip: the name ends in .gz but the content is not gzip",
        "telephony/twilio.csv": "unrecognized telephony layout (set format in telephony_sources)",
        "telephony/no_status.csv": ("missing required column 'status' (generic telephony format)"),
        "telephony/blank.csv": "no recognizable header (no content)",
        "telephony/notes.txt": refused["telephony/notes.txt"],
        "telephony/folder.csv": "unreadable: is a directory",
        "crm/contacts_nohead.csv": refused["crm/contacts_nohead.csv"],
        "crm/contacts_nocreated.csv": "missing required column 'created_at' (contacts)",
        "crm/deals.csv": refused["crm/deals.csv"],
    }
    assert refused["telephony/notes.txt"].startswith("unsupported file type under telephony/")
    assert refused["crm/contacts_nohead.csv"].startswith("no recognizable header")
    assert refused["crm/deals.csv"].startswith("unrecognized crm export name")
    assert summary.files_seen == 14 - 1  # the hidden file is ignored
    # the other files still load
    assert set(legs_by_id(con)) == {"ok1", "gz1"}
    assert scalar(con, "select count(*) from raw.marketing_tracking_numbers") == 1
    statuses = {r["file"]: (r["status"], r["reason"]) for r in ledger(con)}
    assert statuses["telephony/empty.csv"] == ("refused", "empty file")
    assert statuses["telephony/zipped.csv.gz"] == ("loaded", None)
    for row in ledger(con):
        if row["status"] == "refused":
            assert (row["rows_read"], row["rows_loaded"], row["rows_rejected"]) == (0, 0, 0)
    n_ledger = len(ledger(con))

    # a second run lists them again without piling up ledger rows
    again = ingest(con, landing, config)
    assert dict(again.files_refused) == refused
    assert len(ledger(con)) == n_ledger


def test_unreadable_file_refused(con, landing, config, monkeypatch):
    put(landing, "telephony/locked.csv", csv_text(HEADER, leg("x1")))
    put(landing, "telephony/open.csv", csv_text(HEADER, leg("o1")))
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.csv":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    summary = ingest(con, landing, config)
    assert summary.files_refused == [("telephony/locked.csv", "unreadable: Permission denied")]
    assert set(legs_by_id(con)) == {"o1"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_by_mode(con, landing, config):
    path = put(landing, "telephony/locked.csv", csv_text(HEADER, leg("x1")))
    path.chmod(0)
    try:
        summary = ingest(con, landing, config)
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert summary.files_refused[0][1].startswith("unreadable")


def test_corrected_file_refused_keeps_old_rows(con, landing, config):
    put(landing, "telephony/calls.csv", csv_text(HEADER, leg("c1")))
    ingest(con, landing, config)
    put(landing, "telephony/calls.csv", "garbage\n")
    summary = ingest(con, landing, config)
    assert summary.files_refused
    assert set(legs_by_id(con)) == {"c1"}
    assert [r["status"] for r in ledger(con)] == ["loaded", "refused"]


def test_unsupported_forced_format_refused(con, landing, config):
    config.seeds["telephony_sources"] = [
        {
            "pattern": "asterisk/*",
            "format": "avaya_cdr",
            "source_system": "pbx",
            "site": "",
            "inbound_contexts": "",
            "outbound_contexts": "",
            "columns": "",
        },
    ]
    put(landing, "telephony/asterisk/Master.csv", csv_text(HEADER, leg("c1")))
    summary = ingest(con, landing, config)
    [(file, reason)] = summary.files_refused
    assert file == "telephony/asterisk/Master.csv"
    assert "avaya_cdr" in reason and "not supported" in reason


def test_detect_format_registry():
    sources = load_config().seeds["telephony_sources"]
    assert "generic" in TELEPHONY_FORMATS
    assert detect_format(HEADER.upper().split(","), "calls.csv", sources) == "generic"
    assert detect_format(["Sid", "From", "To", "Status"], "calls.csv", sources) is None
    forced = [{"pattern": "tw/*", "format": "twilio"}, *sources]
    assert detect_format(["Sid"], "tw/x.csv", forced) == "twilio"


# -- rejects ------------------------------------------------------------------------------


def test_reject_kinds(con, landing, config):
    config.vars["max_field_bytes"] = 200
    lines = [
        leg("ok"),
        leg("extra") + ",surplus",
        leg("st", status="ringing"),
        leg("dir", direction="sideways"),
        leg("ts", started="yesterday"),
        leg("gap", started="2025-03-09 02:15:00", ended="2025-03-09 03:30:00"),
        leg("neg", started="2025-01-06 09:05:00", ended="2025-01-06 09:00:00"),
        leg("ans", answered="2025-01-06 09:06:00", status="answered"),
        leg("long", ended="2025-01-07 09:00:01"),
        leg("talkneg", answered="2025-01-06 09:01:00", talk="-3", status="answered"),
        leg("talklong", answered="2025-01-06 09:01:00", talk="90000", status="answered"),
        leg("big", queue="q" * 201),
        leg("", status="busy"),
        leg("dup", status="busy"),
        leg("dup", status="busy"),
        leg("sup", status="busy"),
        leg("sup", status="no_answer"),
        leg("trunc", started="2025-01-06 09:00:00")[:30],
    ]
    content = csv_text(HEADER, *lines)
    content = content[:-1]  # the truncated last line has no line end
    put(landing, "telephony/calls.csv", content)
    summary = ingest(con, landing, config)
    got = {r["line_number"]: r for r in rejects(con)}
    expected = {
        3: "wrong field count: expected 15 fields, got 16",
        4: "unknown status 'ringing'",
        5: "unknown direction 'sideways'",
        6: "unparseable timestamp in started_at: 'yesterday'",
        7: "local time in DST gap",
        8: "ended_at before started_at",
        9: "answered_at outside [started_at, ended_at]",
        10: "duration over max_call_hours (24)",
        11: "negative talk_seconds: '-3'",
        12: "talk_seconds over max_call_hours (24)",
        13: "field over max_field_bytes (200): queue has 201 bytes",
        14: "missing call_id",
        16: "duplicate within file",
        17: "superseded within file",
        19: "wrong field count: expected 15 fields, got",
    }
    assert set(got) == set(expected)
    for line, reason in expected.items():
        assert got[line]["reason"].startswith(reason), (line, got[line]["reason"])
        assert got[line]["raw_text"] == lines[line - 2], line
    legs = legs_by_id(con)
    assert set(legs) == {"ok", "dup", "sup"}
    assert legs["sup"]["status_normalized"] == "no_answer"  # the later copy wins
    assert legs["sup"]["_line"] == 18
    assert legs["dup"]["_line"] == 15
    [row] = ledger(con)
    assert (row["rows_read"], row["rows_loaded"], row["rows_rejected"]) == (18, 3, 15)
    assert (summary.rows_read, summary.rows_loaded, summary.rows_rejected) == (18, 3, 15)


def test_crm_rejects_and_entities(con, landing, config):
    put(
        landing,
        "crm/activities.csv",
        csv_text(
            "activity_id,contact_id,activity_type,logged_at,phone,pbx_call_id,disposition,"
            "duration_seconds",
            "a1,k1,outbound_call,2025-01-06T10:00:00Z,(212) 555-0100,c1,connected,42",
            "a2,k1,outbound_call,2025-01-06T10:00:00Z,2125550100,c2,connected,-1",
            "a3,k1,outbound_call,not a time,2125550100,c3,connected,1",
            "a1,k1,outbound_call,2025-01-06T10:00:00Z,(212) 555-0100,c1,connected,43",
        ),
    )
    put(
        landing,
        "crm/form_submissions.csv",
        csv_text(
            "submission_id,submitted_at,phone,email,form_type,source,campaign",
            "f1,2025-01-05T12:00:00-05:00,+1 212 555 0100,a@b.c,quote,google,brand",
        ),
    )
    put(
        landing,
        "marketing/tracking_numbers.csv",
        csv_text(
            "tracking_number,campaign,source,channel,default_intent,valid_from,valid_to",
            "+12125550101,brand,google,search,high_intent,2025-01-01,",
            "+12125550101,promo,facebook,social,,2025-01-01,2025-02-01",
            "+12125550101,backwards,facebook,social,,2025-02-01,2025-01-01",
        ),
    )
    ingest(con, landing, config)
    acts = {r["activity_id"]: r for r in query(con, "select * from raw.crm_activities")}
    assert set(acts) == {"a1"}
    assert acts["a1"]["duration_seconds"] == "43"
    assert acts["a1"]["phone_e164"] == "+12125550100"
    assert acts["a1"]["logged_at_utc"] == datetime(2025, 1, 6, 10, 0)
    reasons = {r["line_number"]: r["reason"] for r in rejects(con, "crm/activities.csv")}
    assert reasons == {
        2: "superseded within file",
        3: "negative duration_seconds: '-1'",
        4: "unparseable timestamp in logged_at: 'not a time'",
    }
    [form] = query(con, "select * from raw.crm_form_submissions")
    assert form["submitted_at_utc"] == datetime(2025, 1, 5, 17, 0)
    assert form["phone_key"] == hmac_hex("+12125550100")
    tracking = query(con, "select * from raw.marketing_tracking_numbers order by campaign")
    assert [t["campaign"] for t in tracking] == ["brand", "promo"]  # one number, two campaigns
    assert tracking[0]["valid_to_utc"] is None
    assert tracking[0]["tracking_number_e164"] == "+12125550101"
    assert tracking[1]["valid_to_utc"] == datetime(2025, 2, 1)
    [bad] = rejects(con, "marketing/tracking_numbers.csv")
    assert bad["reason"] == "valid_to before valid_from"


def test_unterminated_quote_on_last_line_rejected(con, landing, config):
    put(landing, "telephony/calls.csv", HEADER + "\n" + leg("ok") + "\n" + 'c9,,inbound,"2025')
    ingest(con, landing, config)
    assert set(legs_by_id(con)) == {"ok"}
    [reject] = rejects(con)
    assert reject["line_number"] == 3
    assert reject["reason"] == "truncated last line (unterminated quoted field)"
    assert reject["raw_text"] == 'c9,,inbound,"2025'


def test_multiline_quoted_record(con, landing, config):
    multi = leg("m1", queue='"sales\nteam"')
    bad = leg("m2", queue='"two\r\nlines"', status="nope")
    put(landing, "telephony/calls.csv", csv_text(HEADER, multi, bad, leg("after")))
    ingest(con, landing, config)
    legs = legs_by_id(con)
    assert legs["m1"]["queue"] == "sales\nteam"
    assert legs["m1"]["_line"] == 2
    assert legs["after"]["_line"] == 6  # physical lines, not records
    [reject] = rejects(con)
    assert reject["line_number"] == 4
    assert reject["raw_text"] == bad


# -- decoding and layout ------------------------------------------------------------------


def test_cp1252_bom_crlf_reordered_and_extra_columns(con, landing, config, caplog):
    # CP1252: 0xE9 is é, 0x80 is €; 0x81 is undefined in CP1252 and read as Latin-1 U+0081
    row = leg("enc", queue="caf\xe9 \u20ac", parent="PARENT").encode("cp1252")
    row = row.replace(b"PARENT", b"P\x81")
    put(landing, "telephony/cp1252.csv", (HEADER + "\r\n").encode() + row + b"\r\n")
    put(landing, "telephony/bom.csv", b"\xef\xbb\xbf" + csv_text(HEADER, leg("bom")).encode())
    put(landing, "telephony/crlf.csv", csv_text(HEADER, leg("crlf"), newline="\r\n"))
    put(
        landing,
        "telephony/reordered.csv",
        csv_text(
            " Status ,TO_NUMBER,from_number,Ended_At,started_at,direction,Call_ID,shoe_size",
            "busy,+12125550101,(212) 555-0100,2025-01-06 09:05:00,2025-01-06 09:00:00,inbound,"
            "re,44",
        ),
    )
    with caplog.at_level(logging.WARNING):
        ingest(con, landing, config)
    legs = legs_by_id(con)
    assert legs["enc"]["queue"] == "café €"
    assert legs["enc"]["parent_call_id"] == "P\x81"
    assert legs["bom"]["status_normalized"] == "no_answer"
    assert legs["crlf"]["talk_seconds"] == ""  # no stray \r in the last column
    assert legs["crlf"]["started_at_utc"] == datetime(2025, 1, 6, 14, 0)
    assert legs["re"]["status_normalized"] == "busy"
    assert legs["re"]["from_number_e164"] == "+12125550100"
    assert legs["re"]["queue"] == ""  # missing optional column: empty string
    assert legs["re"]["answered_at_utc"] is None
    assert any("shoe_size" in r.getMessage() for r in caplog.records)
    assert rejects(con) == []


def test_crm_aliases(con, landing, config):
    put(
        landing,
        "crm/contacts_sf.csv",
        "Id,Phone,MobilePhone,Email,CreatedDate\nk1,(212) 555-0100,,a@b.c,2025-01-01T00:00:00Z\n",
    )
    ingest(con, landing, config)
    [row] = query(con, "select * from raw.crm_contacts")
    assert row["contact_id"] == "k1"
    assert row["phone_e164"] == "+12125550100"
    assert row["created_at_utc"] == datetime(2025, 1, 1)
    assert row["owner"] == ""


# -- identities ---------------------------------------------------------------------------


def test_identity_merge_transitive_chain(con, landing, config):
    put(
        landing,
        "crm/contacts.csv",
        csv_text(
            CONTACTS_HEADER,
            # k2 -- k3 share a phone, k3 -- k1 share a mobile number written differently
            "k2,(212) 555-0100,,,2024-05-01,,lead,",
            "k3,212-555-0100,+1 310 555 0100,,2024-06-01,,lead,",
            "k1,,(310) 555-0100,,2024-07-01,,customer,",
            "k9,+1 718 555 0199,,,2024-01-01,,lead,",
            "k5,(555) 212-0100,,,2023-01-01,,lead,",
            "k4,(555) 212-0100,,,2023-01-01,,lead,",
        ),
    )
    ingest(con, landing, config)
    ids = {
        r["contact_id"]: (r["identity_id"], r["identity_size"])
        for r in query(con, "select * from raw.crm_contact_identities")
    }
    assert ids == {
        "k1": ("k2", 3),
        "k2": ("k2", 3),
        "k3": ("k2", 3),
        "k9": ("k9", 1),
        "k4": ("k4", 1),  # invalid numbers never merge
        "k5": ("k5", 1),
    }
    # a corrected contacts file (newest copy) re-links: k3 loses its numbers
    put(
        landing,
        "crm/contacts.csv",
        csv_text(
            CONTACTS_HEADER,
            "k2,(212) 555-0100,,,2024-05-01,,lead,",
            "k3,,,,2024-06-01,,lead,",
            "k1,,(310) 555-0100,,2024-07-01,,customer,",
        ),
    )
    ingest(con, landing, config)
    ids = {
        r["contact_id"]: r["identity_id"]
        for r in query(con, "select * from raw.crm_contact_identities")
    }
    assert ids == {"k1": "k1", "k2": "k2", "k3": "k3"}


def test_merge_identities_ties_by_contact_id():
    when = datetime(2024, 1, 1)
    out = merge_identities(
        [("b", when, "+1", None), ("a", when, None, "+1"), ("c", None, "+1", None)]
    )
    assert out == [("b", "a", 3), ("a", "a", 3), ("c", "a", 3)]


# -- hashing key --------------------------------------------------------------------------


def test_hash_key_env_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(HASH_KEY_ENV, "from-env")
    assert resolve_hash_key(tmp_path / "warehouse.duckdb") == b"from-env"
    assert not hash_key_path(tmp_path / "warehouse.duckdb").exists()


def test_hash_key_file_generated_once(tmp_path, monkeypatch):
    monkeypatch.delenv(HASH_KEY_ENV, raising=False)
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    key = resolve_hash_key(warehouse)
    path = tmp_path / "data" / "warehouse.hashkey"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64 and int(key, 16) >= 0
    assert resolve_hash_key(warehouse) == key  # persists
    other = resolve_hash_key(tmp_path / "elsewhere" / "warehouse.duckdb")
    assert other != key  # never a constant


def test_different_keys_give_different_keys_and_rekey(tmp_path, landing, config):
    put(landing, "telephony/calls.csv", csv_text(HEADER, leg("c1"), leg("c2", from_number="42")))
    keys = {}
    for name, key in (("a", b"key-a"), ("b", b"key-b")):
        connection = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        ingest_landing(connection, landing, config, key)
        keys[name] = query(
            connection,
            "select call_id, from_number_key, to_number_key "
            "from raw.telephony_legs order by call_id",
        )
        connection.close()
    assert keys["a"] != keys["b"]
    assert keys["a"][0]["from_number_key"] == hmac_hex("+12125550100", b"key-a")
    assert keys["a"][1]["from_number_key"] == hmac_hex("42", b"key-a")
    # the key changes: the stored keys are recomputed, never mixed
    connection = duckdb.connect(str(tmp_path / "a.duckdb"))
    ingest_landing(connection, landing, config, b"key-b")
    rekeyed = query(
        connection,
        "select call_id, from_number_key, to_number_key from raw.telephony_legs order by call_id",
    )
    connection.close()
    assert rekeyed == keys["b"]


# -- atomicity ----------------------------------------------------------------------------


def test_failed_write_leaves_nothing_of_the_file(con, landing, config, monkeypatch):
    put(landing, "telephony/calls.csv", csv_text(HEADER, leg("c1"), leg("bad", status="?")))
    real_insert = loader_module._insert_frame

    def failing_insert(connection, table, *args, **kwargs):
        if table == "rejected_rows":
            raise RuntimeError("disk full")
        return real_insert(connection, table, *args, **kwargs)

    monkeypatch.setattr(loader_module, "_insert_frame", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_landing(con, landing, config, KEY)
    assert scalar(con, "select count(*) from raw.telephony_legs") == 0
    assert scalar(con, "select count(*) from raw.load_ledger") == 0
    monkeypatch.setattr(loader_module, "_insert_frame", real_insert)
    summary = ingest(con, landing, config)
    assert (summary.rows_loaded, summary.rows_rejected) == (1, 1)


def test_progress_bar_and_summary_files(con, landing, config):
    put(landing, "telephony/calls.csv", csv_text(HEADER, leg("c1"), leg("c2", status="?")))
    put(landing, "telephony/empty.csv", b"")
    summary = ingest_landing(con, landing, config, KEY, progress=True)
    outcomes = {
        f.file: (f.status, f.rows_read, f.rows_loaded, f.rows_rejected) for f in summary.files
    }
    assert outcomes == {
        "telephony/calls.csv": ("loaded", 2, 1, 1),
        "telephony/empty.csv": ("refused", 0, 0, 0),
    }
    assert summary.table_row_counts["rejected_rows"] == 1

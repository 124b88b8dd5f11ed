"""Real export formats (issue 5): Asterisk cdr_csv / cdr_custom, queue_log, Twilio, CRM aliases.

Fixtures are written by the tests; the two real Asterisk samples are read from
`../shared/data/real/` (never copied into the repository), skipped with a reason when that
folder is absent, and a failure under CI=true.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import duckdb
import pytest
from conftest import run_isolated, skip_or_fail
from ingest_helpers import ingest, ledger, legs_by_id, put, query, reject_reasons

from orchestration.config import SEED_HEADERS
from orchestration.ingest import TELEPHONY_FORMATS, detect_format
from orchestration.ingest.asterisk import BASE_COLUMNS, parse_userfield, split_tolerant
from orchestration.project import SEEDS_DIR

REAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
LAB_FILE = REAL_DIR / "asterisk-lab-2015" / "Master.csv"
CUSTOM_FILE = REAL_DIR / "asterisk-cdr-custom-2023" / "Master.csv"
CUSTOM_COLUMNS = (
    "clid src dst dcontext channel dstchannel lastapp lastdata start answer end duration "
    "billsec disposition amaflags accountcode uniqueid userfield sequence"
)


def need_real(path: Path) -> Path:
    if not path.is_file():
        skip_or_fail(f"real sample {path} not found (../shared/data/real/ is absent)")
    return path


# -- helpers ------------------------------------------------------------------------------


def source_row(pattern: str = "*", **values: str) -> dict[str, str]:
    row = dict.fromkeys(SEED_HEADERS["telephony_sources"], "")
    row.update(
        pattern=pattern,
        format="auto",
        site="nyc",
        inbound_contexts="from-pstn from-trunk",
        outbound_contexts="from-internal",
    )
    row.update(values)
    return row


def q(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def cdr(
    *,
    src: str = "2125550199",
    dst: str = "2125550100",
    dcontext: str = "from-pstn",
    clid: str = '"Caller" <2125550199>',
    channel: str = "SIP/trunk-00000001",
    dstchannel: str = "SIP/101-00000002",
    lastapp: str = "Dial",
    lastdata: str = "SIP/101,30",
    start: str = "2025-01-06 09:00:00",
    answer: str = "2025-01-06 09:00:05",
    end: str = "2025-01-06 09:02:05",
    duration: str = "125",
    billsec: str = "120",
    disposition: str = "ANSWERED",
    uniqueid: str | None = None,
    userfield: str | None = None,
    linkedid: str | None = None,
    sequence: str | None = None,
    peeraccount: str = "",
) -> list[str]:
    """One cdr_csv row, as a list of already-quoted fields (numbers unquoted, like cdr_csv)."""
    fields = [q(""), q(src), q(dst), q(dcontext), q(clid), q(channel), q(dstchannel), q(lastapp)]
    fields += [q(lastdata), q(start), q(answer) if answer else "", q(end), duration, billsec]
    fields += [q(disposition), q("DOCUMENTATION")]
    if uniqueid is not None:
        fields.append(q(uniqueid))
    if userfield is not None:
        fields.append(q(userfield))
    if linkedid is not None:
        fields += [q(peeraccount), q(linkedid), sequence or "0"]
    return fields


def cdr_file(*rows: list[str]) -> str:
    return "".join(",".join(r) + "\n" for r in rows)


# -- Asterisk cdr_csv: variants -------------------------------------------------------------

EPOCH_0900_NY = "1736172000"  # 2025-01-06 09:00:00 America/New_York = 14:00 UTC


def variant_rows(width: int) -> list[list[str]]:
    uid = f"{EPOCH_0900_NY}.7"
    kwargs: dict[str, str] = {}
    if width in (17, 18, 20, 21):
        kwargs["uniqueid"] = uid
    if width in (18, 21):
        kwargs["userfield"] = "ivr=1;queue=sales"
    if width in (19, 20, 21):
        kwargs["linkedid"] = uid
        kwargs["sequence"] = "3"
    return [cdr(**kwargs)]


@pytest.mark.parametrize("width", [16, 17, 18, 19, 20, 21])
def test_cdr_csv_variants_by_column_count(con, landing, config, width):
    rows = variant_rows(width)
    assert len(rows[0]) == width
    put(landing, f"telephony/Master_{width}.csv", cdr_file(*rows))
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    [leg] = legs_by_id(con).values()
    assert leg["source_format"] == "asterisk_cdr"
    assert leg["source_system"] == "asterisk_cdr"
    assert leg["status_normalized"] == "answered"
    assert leg["direction_normalized"] == "inbound"
    assert str(leg["started_at_utc"]) == "2025-01-06 14:00:00"
    assert str(leg["answered_at_utc"]) == "2025-01-06 14:00:05"
    assert leg["talk_seconds_num"] == 120.0
    assert leg["from_number_e164"] == "+12125550199"
    assert leg["to_number_e164"] == "+12125550100"
    if width == 16:  # no uniqueid: a hash key, grouped by the caller's channel
        assert leg["call_id"].startswith("cdr-")
        assert leg["parent_call_id"] == "SIP/trunk-00000001"
    elif width == 19:  # linkedid but no uniqueid
        assert leg["call_id"].startswith("cdr-")
        assert leg["parent_call_id"] == f"{EPOCH_0900_NY}.7"
    else:
        assert leg["call_id"].startswith(f"{EPOCH_0900_NY}.7#")
        assert leg["parent_call_id"] == f"{EPOCH_0900_NY}.7"
    if width in (20, 21):
        assert leg["call_id"] == f"{EPOCH_0900_NY}.7#3"  # uniqueid + sequence
    if width in (18, 21):
        assert (leg["queue"], leg["ivr_selection"]) == ("sales", "1")


def test_cdr_csv_17_and_20_told_apart_by_content(con, landing, config):
    # 17 columns whose last field is a userfield, 20 whose 17th is a userfield
    put(
        landing,
        "telephony/uf17.csv",
        cdr_file(
            cdr(userfield="queue=support"),
            cdr(
                userfield="",
                start="2025-01-06 10:00:00",
                end="2025-01-06 10:05:00",
                answer="2025-01-06 10:00:05",
            ),
        ),
    )
    put(
        landing,
        "telephony/uf20.csv",
        cdr_file(cdr(userfield="ivr=2", linkedid="1736172000.9", sequence="5")),
    )
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    l17 = legs_by_id(con, "telephony/uf17.csv")
    assert sorted(r["queue"] for r in l17.values()) == ["", "support"]
    assert all(cid.startswith("cdr-") for cid in l17)
    [l20] = legs_by_id(con, "telephony/uf20.csv").values()
    assert l20["ivr_selection"] == "2"
    assert l20["parent_call_id"] == "1736172000.9"


def test_ambiguous_layout_refused_naming_the_setting(con, landing, config):
    put(
        landing,
        "telephony/mixed.csv",
        cdr_file(
            cdr(uniqueid="1736172000.1"),
            cdr(
                uniqueid="some-user-text",
                start="2025-01-06 10:00:00",
                end="2025-01-06 10:05:00",
                answer="2025-01-06 10:00:05",
            ),
        ),
    )
    put(landing, "telephony/wide.csv", cdr_file(cdr() + ['""'] * 7))
    summary = ingest(con, landing, config)
    refused = dict(summary.files_refused)
    assert "ambiguous Asterisk cdr_csv layout" in refused["telephony/mixed.csv"]
    assert "columns" in refused["telephony/mixed.csv"]
    assert "telephony_sources" in refused["telephony/mixed.csv"]
    assert "pattern '*'" in refused["telephony/mixed.csv"]
    assert refused["telephony/wide.csv"].startswith("unrecognized telephony layout")

    # the setting resolves it: a columns mapping (or a forced format with columns)
    config.seeds["telephony_sources"] = [
        source_row(
            "mixed.csv", format="asterisk_cdr", columns=" ".join(BASE_COLUMNS) + " userfield"
        ),
        *config.seeds["telephony_sources"],
    ]
    summary = ingest(con, landing, config)
    assert "telephony/mixed.csv" not in dict(summary.files_refused)
    assert len(legs_by_id(con, "telephony/mixed.csv")) == 2


def test_cdr_custom_mapping_and_header_line(con, landing, config):
    columns = "uniqueid start end disposition src dst dcontext dstchannel lastapp userfield"
    config.seeds["telephony_sources"] = [
        source_row("custom/*", columns=columns, source_system="pbx-custom"),
        *config.seeds["telephony_sources"],
    ]
    text = (
        columns.replace(" ", ",")
        + "\n"
        + '"1736172000.4","2025-01-06 09:00:00","2025-01-06 09:00:30","NO ANSWER",'
        '"+12125550199","+12125550100","from-trunk","SIP/101-1","Dial","ivr=3"\n'
        '"1736172100.5","2025-01-06 09:01:40","2025-01-06 09:01:30","ANSWERED",'
        '"+12125550199","+12125550100","from-trunk","SIP/101-1","Dial",""\n'
    )
    put(landing, "telephony/custom/Master.csv", text)
    ingest(con, landing, config)
    [leg] = legs_by_id(con).values()
    assert leg["source_system"] == "pbx-custom"
    assert leg["status_normalized"] == "no_answer"
    assert leg["ivr_selection"] == "3"
    assert leg["direction_normalized"] == "inbound"
    assert reject_reasons(con, "telephony/custom/Master.csv") == [(3, "ended_at before started_at")]
    row = ledger(con, "telephony/custom/Master.csv")[-1]
    assert (row["rows_read"], row["rows_loaded"], row["rows_rejected"]) == (2, 1, 1)


def test_cdr_custom_bad_columns_setting_refused(con, landing, config):
    config.seeds["telephony_sources"] = [source_row("x/*", columns="start end colour")]
    put(landing, "telephony/x/Master.csv", cdr_file(cdr()))
    summary = ingest(con, landing, config)
    [(_, reason)] = summary.files_refused
    assert "unknown cdr column 'colour'" in reason and "columns" in reason


def test_malformed_clid_quoting_and_cp1252_bytes(con, landing, config):
    good = ",".join(cdr(uniqueid="1736172000.1", clid='"José" <2125550199>'))
    # cdr_csv wrote the clid's quotes undoubled: ""Doe, John" <1115>" (a comma inside)
    broken = ",".join(
        cdr(
            uniqueid="1736172060.2",
            start="2025-01-06 09:01:00",
            answer="",
            end="2025-01-06 09:03:00",
        )
    ).replace(q('"Caller" <2125550199>'), '""Doe, John" <1115>"')
    latin = ",".join(
        cdr(
            uniqueid="1736172120.3",
            start="2025-01-06 09:02:00",
            answer="",
            end="2025-01-06 09:04:00",
            userfield=None,
        )
    ).replace("Caller", "Müller")
    data = (good + "\n" + broken + "\n" + latin + "\n").encode("cp1252")
    assert b"\xfc" in data and b"\xe9" in data  # not UTF-8
    put(landing, "telephony/Master.csv", data)
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    loaded = legs_by_id(con)
    assert len(loaded) == 3
    assert reject_reasons(con, "telephony/Master.csv") == []
    by_uid = {cid.split("#")[0]: leg for cid, leg in loaded.items()}
    assert by_uid["1736172000.1"]["from_number"] == "2125550199"
    assert by_uid["1736172060.2"]["status_normalized"] == "answered"
    assert split_tolerant('"a",""Doe, John" <1115>","b",3') == ["a", '"Doe, John" <1115>', "b", "3"]


def test_ids_and_numbers_stay_text(con, landing, config):
    put(
        landing,
        "telephony/Master.csv",
        cdr_file(
            cdr(uniqueid="1736172000.1", src="0044123", dst="007", dcontext="ext"),
            cdr(uniqueid="1736172000.10", src="0044123", dst="007", dcontext="ext"),
        ),
    )
    ingest(con, landing, config)
    loaded = legs_by_id(con)
    assert {leg["parent_call_id"] for leg in loaded.values()} == {"1736172000.1", "1736172000.10"}
    assert {leg["from_number"] for leg in loaded.values()} == {"0044123"}
    assert {leg["to_number"] for leg in loaded.values()} == {"007"}


def test_userfield_pairs():
    assert parse_userfield("ivr=2; queue=sales;disposition=wrong_number;site=lax;x") == {
        "ivr": "2",
        "queue": "sales",
        "disposition": "wrong_number",
        "site": "lax",
    }
    assert parse_userfield("free text") == {}


def test_userfield_site_picks_the_clock(con, landing, config):
    put(
        landing,
        "telephony/Master.csv",
        cdr_file(
            cdr(uniqueid="1736182800.1", userfield="site=lax;disposition=wrong_number"),
            cdr(uniqueid="1736182800.2", userfield="site=mars", start="2025-01-06 09:30:00"),
        ),
    )
    ingest(con, landing, config)
    [leg] = legs_by_id(con).values()
    assert leg["site_resolved"] == "lax"
    assert str(leg["started_at_utc"]) == "2025-01-06 17:00:00"  # Los Angeles
    assert leg["disposition"] == "wrong_number"
    assert reject_reasons(con, "telephony/Master.csv") == [(2, "unknown site 'mars' in userfield")]


def test_linkedid_grouping_and_internal_calls(con, landing, config, tmp_path):
    uid = "1736172000.1"
    put(
        landing,
        "telephony/Master.csv",
        cdr_file(
            # one inbound call ringing two phones: one leg unanswered, one answered
            cdr(
                uniqueid=uid,
                linkedid=uid,
                sequence="1",
                userfield="",
                dstchannel="SIP/101-1",
                disposition="NO ANSWER",
                answer="",
                billsec="0",
            ),
            cdr(uniqueid=uid, linkedid=uid, sequence="2", userfield="", dstchannel="SIP/102-1"),
            # an extension-to-extension call in a context of neither list
            cdr(
                uniqueid="1736175600.5",
                linkedid="1736175600.5",
                sequence="3",
                userfield="",
                src="101",
                dst="102",
                dcontext="phones",
                start="2025-01-06 10:00:00",
                answer="2025-01-06 10:00:02",
                end="2025-01-06 10:01:00",
            ),
            # an outbound call
            cdr(
                uniqueid="1736179200.9",
                linkedid="1736179200.9",
                sequence="4",
                userfield="",
                src="101",
                dst="2125550177",
                dcontext="from-internal",
                start="2025-01-06 11:00:00",
                answer="2025-01-06 11:00:09",
                end="2025-01-06 11:03:00",
            ),
        ),
    )
    ingest(con, landing, config)
    loaded = legs_by_id(con)
    assert {leg["parent_call_id"] for leg in loaded.values()} == {
        uid,
        "1736175600.5",
        "1736179200.9",
    }
    directions = sorted(leg["direction_normalized"] for leg in loaded.values())
    assert directions == ["inbound", "inbound", "internal", "outbound"]
    assert {leg["call_id"] for leg in loaded.values() if leg["parent_call_id"] == uid} == {
        f"{uid}#1",
        f"{uid}#2",
    }


@pytest.mark.parametrize(
    ("lastapp", "disposition", "dstchannel", "expected"),
    [
        ("VoiceMail", "NO ANSWER", "", "voicemail"),
        ("VoiceMail", "ANSWERED", "", "voicemail"),
        ("Dial", "ANSWERED", "SIP/101-00000002", "answered"),
        ("Queue", "ANSWERED", "", "abandoned"),
        ("Playback", "ANSWERED", "", "abandoned"),
        ("Dial", "NO ANSWER", "SIP/101-00000002", "no_answer"),
        ("Dial", "BUSY", "SIP/101-00000002", "busy"),
        ("Dial", "FAILED", "SIP/101-00000002", "failed"),
        ("Dial", "CONGESTION", "SIP/101-00000002", "failed"),
    ],
)
def test_status_mapping_table(con, landing, config, lastapp, disposition, dstchannel, expected):
    answered = disposition == "ANSWERED" or lastapp == "VoiceMail"
    put(
        landing,
        "telephony/Master.csv",
        cdr_file(
            cdr(
                uniqueid="1736172000.1",
                userfield="",
                lastapp=lastapp,
                dstchannel=dstchannel,
                disposition=disposition,
                answer="2025-01-06 09:00:05" if answered else "",
                billsec="120" if answered else "0",
            ),
        ),
    )
    ingest(con, landing, config)
    [leg] = legs_by_id(con).values()
    assert leg["status_normalized"] == expected
    assert leg["status"] == disposition
    assert (leg["talk_seconds_num"] is not None) == (expected == "answered")


def test_unknown_disposition_and_wrong_count_rejected(con, landing, config):
    put(
        landing,
        "telephony/Master.csv",
        cdr_file(
            cdr(uniqueid="1736172000.1", userfield=""),
            cdr(uniqueid="1736172000.2", userfield="", disposition="MAYBE"),
            cdr(uniqueid="1736172000.3", userfield="")[:10],
        ),
    )
    ingest(con, landing, config)
    assert reject_reasons(con, "telephony/Master.csv") == [
        (2, "unknown disposition 'MAYBE'"),
        (3, "wrong field count: expected 18 fields, got 10"),
    ]


# -- queue_log ----------------------------------------------------------------------------

QUEUE_CDR_ROWS = [
    # answered through the queue
    cdr(uniqueid="1736172000.1", linkedid="1736172000.1", sequence="1", lastapp="Queue",
        dstchannel="SIP/101-1"),
    # abandoned in the queue: the Queue application answered the channel, no dstchannel
    cdr(uniqueid="1736172600.2", linkedid="1736172600.2", sequence="2", lastapp="Queue",
        dstchannel="", start="2025-01-06 09:10:00", answer="2025-01-06 09:10:01",
        end="2025-01-06 09:11:00", billsec="59", src="2125550142",
        clid='"B" <2125550142>'),
    # timed out of the queue, Asterisk logged NO ANSWER
    cdr(uniqueid="1736173200.3", linkedid="1736173200.3", sequence="3", lastapp="Queue",
        dstchannel="SIP/102-1", disposition="NO ANSWER", answer="", billsec="0",
        start="2025-01-06 09:20:00", end="2025-01-06 09:22:00", src="2125550143",
        clid='"C" <2125550143>'),
]  # fmt: skip
QUEUE_LOG = """\
1736172000|NONE|NONE|NONE|QUEUESTART|
1736172001|1736172000.1|sales|NONE|ENTERQUEUE||2125550199|1
1736172009|1736172000.1|sales|SIP/101|CONNECT|8|1736172009.4|3
1736172125|1736172000.1|sales|SIP/101|COMPLETECALLER|8|116|1
1736172601|1736172600.2|support|NONE|ENTERQUEUE||2125550142|2
1736172660|1736172600.2|support|NONE|ABANDON|2|2|59
1736173201|1736173200.3|sales|NONE|ENTERQUEUE||2125550143|1
1736173215|1736173200.3|sales|SIP/102|RINGNOANSWER|15000
1736173320|1736173200.3|sales|NONE|EXITWITHTIMEOUT|1|1|119
1736173320|1736173200.3|sales|NONE|EXITWITHTIMEOUT|1|1|119
not-a-number|x|sales|NONE|ENTERQUEUE
1736173320|too|few
"""


def test_queue_log_loaded_and_reject_reasons(con, landing, config):
    put(landing, "telephony/queue_log", QUEUE_LOG)
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    row = ledger(con, "telephony/queue_log")[-1]
    assert row["format"] == "asterisk_queue_log"
    assert (row["rows_read"], row["rows_loaded"], row["rows_rejected"]) == (12, 9, 3)
    assert reject_reasons(con, "telephony/queue_log") == [
        (10, "duplicate within file"),
        (11, "unparseable epoch 'not-a-number'"),
        (12, "wrong field count: expected 5 to 10 |-separated fields, got 3"),
    ]
    events = query(con, "select * from raw.asterisk_queue_events order by _line")
    assert events[1]["callid"] == "1736172000.1"
    assert events[1]["event"] == "ENTERQUEUE"
    assert str(events[1]["event_at_utc"]) == "2025-01-06 14:00:01"
    assert detect_format(["x"], "pbx/queue_log.1", []) == "asterisk_queue_log"
    # a corrected queue_log supersedes its events
    put(landing, "telephony/queue_log", QUEUE_LOG.splitlines()[1] + "\n")
    ingest(con, landing, config)
    assert query(con, "select count(*) as n from raw.asterisk_queue_events")[0]["n"] == 1


def _pipeline_config(tmp_path: Path, sites: list[str] | None = None, sources=None) -> Path:
    """A --config directory: sites (default seed unless given) and telephony_sources rows."""
    config_dir = tmp_path / "config"
    config_dir.mkdir(exist_ok=True)
    if sites is not None:
        header = ",".join(SEED_HEADERS["sites"])
        (config_dir / "sites.csv").write_text("\n".join([header, *sites]) + "\n")
    if sources is not None:
        with (config_dir / "telephony_sources.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, SEED_HEADERS["telephony_sources"])
            writer.writeheader()
            writer.writerows(sources)
    return config_dir


def test_queue_log_enriches_cdr_calls(tmp_path):
    landing = tmp_path / "landing"
    put(landing, "telephony/Master.csv", cdr_file(*QUEUE_CDR_ROWS))
    put(landing, "telephony/queue_log", QUEUE_LOG)
    warehouse = tmp_path / "warehouse.duckdb"
    outcome = run_isolated(landing, warehouse, tmp_path / "ringledger.duckdb")
    assert outcome.exit_code == 0, (outcome.errors, outcome.gate_failures)
    with duckdb.connect(str(warehouse), read_only=True) as wh:
        calls = {
            r["call_id"]: r
            for r in query(
                wh,
                "select call_id, queue, status, is_answered, has_abandoned_leg, wait_seconds, "
                "queue_wait_seconds, queue_abandon_position from intermediate.int_calls",
            )
        }
    answered, abandoned, timed_out = (
        calls["1736172000.1"],
        calls["1736172600.2"],
        calls["1736173200.3"],
    )
    assert (answered["queue"], answered["status"], answered["queue_wait_seconds"]) == (
        "sales",
        "answered",
        8.0,
    )
    assert answered["queue_abandon_position"] is None
    assert (abandoned["queue"], abandoned["status"], abandoned["is_answered"]) == (
        "support",
        "abandoned",
        False,
    )
    assert (abandoned["queue_wait_seconds"], abandoned["queue_abandon_position"]) == (59.0, 2)
    assert abandoned["wait_seconds"] == 60.0  # start to hang-up, as for every format
    assert timed_out["status"] == "abandoned"  # NO ANSWER + EXITWITHTIMEOUT
    assert timed_out["has_abandoned_leg"] is True
    assert (timed_out["queue_wait_seconds"], timed_out["queue_abandon_position"]) == (119.0, 1)


# -- Twilio -------------------------------------------------------------------------------

TWILIO_HEADER = "Sid,ParentCallSid,From,To,Direction,Status,StartTime,EndTime,Duration,AnsweredBy"
TWILIO_ROWS = [
    # inbound call: the IVR completes the parent, a child dial leg answered by a person
    ("CA01", "", "+12125550199", "+12125550100", "inbound", "completed",
     "Mon, 06 Jan 2025 14:00:00 +0000", "Mon, 06 Jan 2025 14:03:00 +0000", "180", ""),
    ("CA02", "CA01", "+12125550100", "+12125550111", "outbound-dial", "completed",
     "Mon, 06 Jan 2025 14:00:20 +0000", "Mon, 06 Jan 2025 14:03:00 +0000", "150", "human"),
    # inbound call completed by the IVR only: nobody answered
    ("CA03", "", "+12125550142", "+12125550100", "inbound", "completed",
     "Mon, 06 Jan 2025 14:10:00 +0000", "Mon, 06 Jan 2025 14:10:40 +0000", "40", ""),
    ("CA04", "CA03", "+12125550100", "+12125550111", "outbound-dial", "no-answer",
     "Mon, 06 Jan 2025 14:10:10 +0000", "Mon, 06 Jan 2025 14:10:40 +0000", "0", ""),
    # the dialed leg reached a machine: voicemail
    ("CA05", "", "+12125550143", "+12125550100", "inbound", "completed",
     "2025-01-06T14:20:00Z", "2025-01-06T14:21:00Z", "60", ""),
    ("CA06", "CA05", "+12125550100", "+12125550111", "outbound-dial", "completed",
     "2025-01-06T14:20:15+00:00", "2025-01-06T14:21:00+00:00", "30", "machine_end_beep"),
    # an outbound API call (callback) the customer picked up, and a busy one
    ("CA07", "", "+12125550100", "+12125550142", "outbound-api", "completed",
     "2025-01-06 15:00:00", "2025-01-06 15:01:00", "50", "human"),
    ("CA08", "", "+12125550100", "+12125550143", "outbound-api", "busy",
     "2025-01-06 15:05:00", "2025-01-06 15:05:10", "", ""),
    ("CA09", "", "+12125550144", "+12125550100", "inbound", "canceled",
     "2025-01-06 15:06:00", "2025-01-06 15:06:03", "", ""),
    ("CA10", "", "+12125550144", "+12125550100", "inbound", "in-progress",
     "2025-01-06 15:07:00", "", "", ""),
    ("CA11", "", "+12125550144", "+12125550100", "inbound", "completed",
     "yesterday", "2025-01-06 15:06:03", "", ""),
]  # fmt: skip
TWILIO_EXPECTED = {
    "CA01": ("abandoned", "inbound"),
    "CA02": ("answered", "inbound"),
    "CA03": ("abandoned", "inbound"),
    "CA04": ("no_answer", "inbound"),
    "CA05": ("abandoned", "inbound"),
    "CA06": ("voicemail", "inbound"),
    "CA07": ("answered", "outbound"),
    "CA08": ("busy", "outbound"),
    "CA09": ("canceled", "inbound"),
}


def _check_twilio(con, file: str) -> None:
    loaded = legs_by_id(con, file)
    assert {
        cid: (leg["status_normalized"], leg["direction_normalized"]) for cid, leg in loaded.items()
    } == TWILIO_EXPECTED
    assert loaded["CA02"]["parent_call_id"] == "CA01"
    assert str(loaded["CA01"]["started_at_utc"]) == "2025-01-06 14:00:00"
    assert str(loaded["CA02"]["answered_at_utc"]) == "2025-01-06 14:00:30"
    assert loaded["CA02"]["talk_seconds_num"] == 150.0
    assert str(loaded["CA06"]["answered_at_utc"]) == "2025-01-06 14:20:30"
    assert loaded["CA01"]["source_system"] == "twilio"
    assert [reason for _, reason in reject_reasons(con, file)] == [
        "call not finished (Status 'in-progress')",
        "unparseable timestamp in StartTime: 'yesterday'",
    ]


def test_twilio_csv(con, landing, config):
    lines = [TWILIO_HEADER] + [
        ",".join(f'"{v}"' if "," in v else v for v in r) for r in TWILIO_ROWS
    ]
    put(landing, "telephony/twilio_calls.csv", "\n".join(lines) + "\n")
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    assert ledger(con, "telephony/twilio_calls.csv")[-1]["format"] == "twilio"
    _check_twilio(con, "telephony/twilio_calls.csv")


def test_twilio_json_lines(con, landing, config):
    keys = ["sid", "parent_call_sid", "from", "to", "direction", "status", "start_time",
            "end_time", "duration", "answered_by"]  # fmt: skip
    lines = []
    for row in TWILIO_ROWS:
        obj = {k: (v or None) for k, v in zip(keys, row, strict=True)}
        if obj["duration"] is not None:
            obj["duration"] = int(obj["duration"])
        lines.append(json.dumps(obj))
    lines.insert(3, "{not json")
    put(landing, "telephony/calls.jsonl.gz", gzip.compress(("\n".join(lines) + "\n").encode()))
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    file = "telephony/calls.jsonl.gz"
    loaded = legs_by_id(con, file)
    assert len(loaded) == len(TWILIO_EXPECTED)
    assert reject_reasons(con, file)[0][0] == 4 and reject_reasons(con, file)[0][1].startswith(
        "malformed JSON"
    )
    row = ledger(con, file)[-1]
    assert (row["rows_read"], row["rows_loaded"], row["rows_rejected"]) == (12, 9, 3)


def test_twilio_calls_answered_only_by_a_person(tmp_path):
    landing = tmp_path / "landing"
    lines = [TWILIO_HEADER] + [
        ",".join(f'"{v}"' if "," in v else v for v in r) for r in TWILIO_ROWS
    ]
    put(landing, "telephony/twilio_calls.csv", "\n".join(lines) + "\n")
    warehouse = tmp_path / "warehouse.duckdb"
    outcome = run_isolated(landing, warehouse, tmp_path / "ringledger.duckdb")
    assert outcome.exit_code == 0, (outcome.errors, outcome.gate_failures)
    with duckdb.connect(str(warehouse), read_only=True) as wh:
        calls = {
            r["call_id"]: (r["status"], r["is_answered"])
            for r in query(wh, "select call_id, status, is_answered from intermediate.int_calls")
        }
    assert calls["CA01"] == ("answered", True)
    assert calls["CA03"] == ("abandoned", False)  # IVR completed the parent: not a person
    assert calls["CA05"] == ("voicemail", False)  # machine_* is never a person
    assert calls["CA07"] == ("answered", True)


def test_format_registry():
    assert {"generic", "asterisk_cdr", "asterisk_queue_log", "twilio"} <= set(TELEPHONY_FORMATS)
    assert detect_format(TWILIO_HEADER.split(","), "x.csv", []) == "twilio"
    assert detect_format(["a"], "x.jsonl", []) == "twilio"
    first = [f.strip('"') for f in cdr(uniqueid="1.1")]
    assert detect_format(first, "Master.csv", []) == "asterisk_cdr"
    assert detect_format(["a"], "x.csv", [source_row(columns="start end disposition")]) == (
        "asterisk_cdr"
    )


# -- CRM aliases --------------------------------------------------------------------------


def test_crm_salesforce_aliases(con, landing, config):
    put(
        landing,
        "crm/activities_sf.csv",
        "Id,WhoId,CallType,CallObject,CallDisposition,CallDurationInSeconds,CreatedDate,Phone\n"
        "00T1,003A,Outbound,1736172000.1,Connected,75,2025-01-06T15:00:00.000+0000,2125550199\n"
        "00T2,003A,Inbound,CA01,Wrong Number,0,2025-01-06T15:10:00.000+0000,2125550199\n",
    )
    put(
        landing,
        "crm/opportunities_sf.csv",
        "Id,ContactId,CreatedDate,StageName,Amount,IsWon,IsClosed,CloseDate\n"
        "006A,003A,2025-01-06T15:00:00.000+0000,Closed Won,1200.50,true,true,2025-01-20\n",
    )
    put(
        landing,
        "crm/contacts_sf.csv",
        "Id,Phone,MobilePhone,Email,CreatedDate,LastModifiedDate,OwnerId\n"
        "003A,(212) 555-0199,,a@example.com,2025-01-01T00:00:00Z,2025-01-02T00:00:00Z,005X\n",
    )
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    acts = {r["activity_id"]: r for r in query(con, "select * from raw.crm_activities")}
    assert acts["00T1"]["activity_type"] == "outbound_call"
    assert acts["00T2"]["activity_type"] == "inbound_call"
    assert acts["00T1"]["pbx_call_id"] == "1736172000.1"
    assert acts["00T1"]["disposition"] == "Connected"
    assert acts["00T1"]["duration_seconds"] == "75"
    assert str(acts["00T1"]["logged_at_utc"]) == "2025-01-06 15:00:00"
    assert acts["00T1"]["contact_id"] == "003A"
    [opp] = query(con, "select * from raw.crm_opportunities")
    assert (opp["stage"], opp["amount"], opp["is_won"], opp["is_closed"]) == (
        "Closed Won",
        "1200.50",
        "true",
        "true",
    )
    assert str(opp["closed_at_utc"]) == "2025-01-20 00:00:00"
    [contact] = query(con, "select * from raw.crm_contacts")
    assert contact["phone_e164"] == "+12125550199"
    assert contact["owner"] == "005X"


def test_crm_hubspot_aliases(con, landing, config):
    put(
        landing,
        "crm/activities_hs.csv",
        "hs_object_id,hs_timestamp,hs_call_direction,hs_call_duration,hs_call_status,"
        "hs_call_from_number,hs_call_to_number,hs_call_external_id,associated_contact_id\n"
        "901,1736175600000,OUTBOUND,75000,COMPLETED,+12125550100,+12125550199,CA07,51\n"
        "902,2025-01-06T15:10:00Z,INBOUND,1500,NO_ANSWER,+12125550199,+12125550100,,51\n",
    )
    put(
        landing,
        "crm/opportunities_hs.csv",
        "hs_object_id,createdate,dealstage,amount,closedate,associated_contact_id\n"
        "71,1736175600000,closedwon,900,2025-01-20T00:00:00Z,51\n",
    )
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    acts = {r["activity_id"]: r for r in query(con, "select * from raw.crm_activities")}
    out, inb = acts["901"], acts["902"]
    assert str(out["logged_at_utc"]) == "2025-01-06 15:00:00"  # epoch milliseconds
    assert str(inb["logged_at_utc"]) == "2025-01-06 15:10:00"
    assert (out["activity_type"], inb["activity_type"]) == ("outbound_call", "inbound_call")
    assert (out["duration_seconds"], inb["duration_seconds"]) == ("75", "1.5")  # ms -> s
    assert out["phone_e164"] == "+12125550199"  # the remote party: to for outbound
    assert inb["phone_e164"] == "+12125550199"  # from for inbound
    assert (out["disposition"], inb["disposition"]) == ("COMPLETED", "NO_ANSWER")
    assert out["pbx_call_id"] == "CA07"
    assert out["contact_id"] == "51"
    [opp] = query(con, "select * from raw.crm_opportunities")
    assert (opp["stage"], opp["is_won"], opp["is_closed"]) == ("closedwon", "true", "true")
    assert str(opp["created_at_utc"]) == "2025-01-06 15:00:00"


# -- the real samples ---------------------------------------------------------------------


def test_real_lab_2015_loads_and_reconciles(con, landing, config):
    path = need_real(LAB_FILE)
    put(landing, "telephony/lab/Master.csv", path.read_bytes())
    config.seeds["telephony_sources"] = [source_row("lab/*", source_system="lab")]
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    row = ledger(con, "telephony/lab/Master.csv")[-1]
    physical = sum(1 for line in path.read_text().splitlines() if line.strip())
    assert row["rows_read"] == physical == 105
    assert row["rows_read"] == row["rows_loaded"] + row["rows_rejected"]
    for _, reason in reject_reasons(con, "telephony/lab/Master.csv"):
        assert reason  # every rejected row says why
    counts = {
        r["status"]: r["n"]
        for r in query(con, "select status, count(*) as n from raw.telephony_legs group by 1")
    }
    assert counts == {"ANSWERED": 94, "NO ANSWER": 7, "FAILED": 2, "BUSY": 2}


def test_real_cdr_custom_2023_loads_with_its_mapping(con, landing, config):
    path = need_real(CUSTOM_FILE)
    put(landing, "telephony/custom/Master.csv", path.read_bytes())
    # without the mapping a 19-column file reads as cdr_csv newcdrcolumns and fails its rows
    config.seeds["sites"].append(
        {
            "site": "tana",
            "time_zone": "Indian/Antananarivo",
            "default_region": "MG",
            "business_lines": "",
            "telephony_clock": "local",
            "holiday_country": "MG",
            "holiday_subdivision": "",
        }
    )
    config.seeds["telephony_sources"] = [
        source_row("custom/*", format="asterisk_cdr", site="tana", columns=CUSTOM_COLUMNS)
    ]
    summary = ingest(con, landing, config)
    assert summary.files_refused == []
    row = ledger(con, "telephony/custom/Master.csv")[-1]
    assert (row["rows_read"], row["rows_loaded"], row["rows_rejected"]) == (14, 14, 0)
    first = legs_by_id(con)["1690325492.2#2"]
    assert first["from_number"] == "client1" and first["to_number"] == "6789"
    assert str(first["started_at_utc"]) == "2023-07-25 22:51:32"  # UTC+3 local time
    [check] = query(con, "select * from raw.asterisk_clock_checks")
    assert (check["legs_compared"], check["median_offset_seconds"]) == (14, 0.0)


# -- full pipeline on the real samples ------------------------------------------------------

DEFAULT_SITES = None


def _default_site_lines() -> list[str]:
    return (SEEDS_DIR / "sites.csv").read_text().strip().splitlines()[1:]


def test_real_lab_2015_full_pipeline(tmp_path):
    path = need_real(LAB_FILE)
    landing = tmp_path / "landing"
    put(landing, "telephony/lab/Master.csv", path.read_bytes())
    # usegmtime=yes: the lab's clock is UTC
    sites = [line.replace(",local,", ",utc,", 1) if line.startswith("nyc,") else line
             for line in _default_site_lines()]  # fmt: skip
    config_dir = _pipeline_config(
        tmp_path, sites, [source_row("lab/*", source_system="asterisk_lab")]
    )
    warehouse = tmp_path / "warehouse.duckdb"
    marts = tmp_path / "ringledger.duckdb"
    outcome = run_isolated(landing, warehouse, marts, config_dir=config_dir)
    assert outcome.exit_code == 0, (outcome.errors, outcome.refused_files, outcome.gate_failures)
    assert outcome.gate_failures == []
    with duckdb.connect(str(marts), read_only=True) as published:
        assert published.execute("select count(*) from marts.fct_calls").fetchone()[0] > 0
        assert (
            published.execute("select count(*) from marts.fct_missed_call_episodes").fetchone()[0]
            == 0
        )
        gates = dict(
            published.execute("select gate, passed from marts.data_quality_results").fetchall()
        )
        assert all(gates.values()) and len(gates) == 7
        detail = published.execute(
            "select detail from marts.data_quality_results where gate = 'timezone_offset'"
        ).fetchone()[0]
        assert "agree with their uniqueid epochs" in detail


def _custom_run(tmp_path: Path, clock: str):
    path = need_real(CUSTOM_FILE)
    landing = tmp_path / "landing"
    put(landing, "telephony/custom/Master.csv", path.read_bytes())
    sites = [
        *_default_site_lines(),
        f"tana,Indian/Antananarivo,MG,,{clock},MG,",
    ]
    config_dir = _pipeline_config(
        tmp_path,
        sites,
        [source_row("custom/*", format="asterisk_cdr", site="tana", columns=CUSTOM_COLUMNS,
                    source_system="kely")],
    )  # fmt: skip
    return run_isolated(
        landing,
        tmp_path / "warehouse.duckdb",
        tmp_path / "ringledger.duckdb",
        config_dir=config_dir,
    )


def test_real_cdr_custom_2023_right_clock_passes(tmp_path):
    outcome = _custom_run(tmp_path, "local")
    assert outcome.exit_code == 0, (outcome.errors, outcome.refused_files, outcome.gate_failures)


def test_real_cdr_custom_2023_wrong_clock_fails_timezone_offset(tmp_path):
    outcome = _custom_run(tmp_path, "utc")  # the PBX wrote local UTC+3 times
    assert outcome.exit_code == 3, (outcome.errors, outcome.gate_failures)
    [failure] = [f for f in outcome.gate_failures if f.gate == "timezone_offset"]
    text = str(failure)
    assert "3" in text
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as wh:
        measured, detail = wh.execute(
            "select measured_value, detail from marts.data_quality_results "
            "where gate = 'timezone_offset'"
        ).fetchone()
        # the offset is reported, never applied: the legs keep the configured reading
        start = wh.execute("select min(started_at_utc) from raw.telephony_legs").fetchone()[0]
    assert measured == 3.0
    assert "+3 h" in detail and "kely" in detail and "telephony_clock" in detail
    assert str(start) == "2023-07-26 01:51:32"

"""The sample generator's Asterisk and Twilio output (`--telephony-format asterisk|twilio`).

The files are read back with the csv module, zoneinfo and email.utils (never the generator's
own code); then with the ingest (zero rejects, no refused file) and through the whole pipeline,
where the three formats of one seed must give the same calls, misses and episodes.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from conftest import generate_sample, run_isolated

from orchestration.config import load_config
from orchestration.generate import FAULTS, generate
from orchestration.ingest import ingest_landing
from orchestration.ingest.telephony import match_source

CONFIG = load_config()
SITES = [row["site"] for row in CONFIG.sites]
ZONES = {row["site"]: ZoneInfo(row["time_zone"]) for row in CONFIG.sites}
SOURCES = CONFIG.seeds["telephony_sources"]
SMALL = {"days": 5, "calls_per_day": 60}
FORMATS = ("asterisk", "twilio")
CDR_COLUMNS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield", "peeraccount", "linkedid", "sequence",
)  # fmt: skip
TWILIO_COLUMNS = (
    "Sid", "ParentCallSid", "DateCreated", "AccountSid", "From", "To", "Direction", "Status",
    "StartTime", "EndTime", "Duration", "AnsweredBy",
)  # fmt: skip
UNIQUEID = re.compile(r"^(\d{10})\.(\d+)$")
SID = re.compile(r"^CA[0-9a-f]{32}$")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def cdr_rows(root: Path) -> list[dict[str, str]]:
    """Every row of the Master_*.csv files (no header), the overlap repeated."""
    rows = []
    for path in sorted((root / "telephony").glob("Master_*.csv")):
        for fields in csv.reader(io.StringIO(decode(path.read_bytes()), newline="")):
            assert len(fields) == len(CDR_COLUMNS), (path.name, fields)
            rows.append(dict(zip(CDR_COLUMNS, fields, strict=True)))
    return rows


def twilio_rows(root: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted((root / "telephony").rglob("*.csv")):
        site = path.parent.name
        reader = csv.DictReader(io.StringIO(decode(path.read_bytes()), newline=""))
        assert tuple(reader.fieldnames or ()) == TWILIO_COLUMNS
        rows += [{**row, "_site": site} for row in reader]
    return rows


def generic_rows(root: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted((root / "telephony").glob("calls_*.csv")):
        rows += csv.DictReader(io.StringIO(decode(path.read_bytes()), newline=""))
    return rows


def local_to_utc(text: str, site: str) -> datetime:
    wall = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONES[site])
    return wall.astimezone(UTC).replace(tzinfo=None)


def iso_to_utc(text: str, site: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZONES[site])
    return parsed.astimezone(UTC).replace(tzinfo=None)


def activities(root: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted((root / "crm").glob("activities_*.csv")):
        rows += csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    return rows


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    """The same seed in the three formats."""
    root = tmp_path_factory.mktemp("formats")
    out = {}
    for name in ("generic", *FORMATS):
        out[name] = root / name
        generate(out[name], telephony_format=name, **SMALL)
    return out


# -- determinism ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FORMATS)
def test_same_arguments_give_identical_bytes(tmp_path, samples, name):
    again = tmp_path / "again"
    generate(again, telephony_format=name, **SMALL)
    assert tree_bytes(again) == tree_bytes(samples[name])
    generate(again, telephony_format=name, **SMALL, seed=7)
    assert tree_bytes(again) != tree_bytes(samples[name])


@pytest.mark.parametrize("name", FORMATS)
def test_same_calls_as_the_generic_export(samples, name):
    """Every logical call of the generic export, at the same whole second, from the same
    caller to the same number; the CRM files are the same but for the ids activities stamp."""
    generic = {}
    for row in generic_rows(samples["generic"]):
        if not row["parent_call_id"]:
            start = iso_to_utc(row["started_at"], row["site"]).replace(microsecond=0)
            generic[row["call_id"]] = (start, row["from_number"], row["to_number"])
    if name == "asterisk":
        parents = {}
        for row in cdr_rows(samples[name]):
            site = row["userfield"].split(";")[0].removeprefix("site=")
            key = (local_to_utc(row["start"], site), row["src"], row["dst"])
            parents.setdefault(row["linkedid"], key)  # the first row of a call is its parent
    else:
        parents = {
            row["Sid"]: (
                parsedate_to_datetime(row["StartTime"]).astimezone(UTC).replace(tzinfo=None),
                row["From"],
                row["To"],
            )
            for row in twilio_rows(samples[name])
            if not row["ParentCallSid"]
        }
    assert Counter(parents.values()) == Counter(generic.values())
    ours, theirs = activities(samples["generic"]), activities(samples[name])
    assert len(ours) == len(theirs)
    for mine, other in zip(ours, theirs, strict=True):
        assert {k: v for k, v in mine.items() if k != "pbx_call_id"} == {
            k: v for k, v in other.items() if k != "pbx_call_id"
        }
        assert bool(mine["pbx_call_id"]) == bool(other["pbx_call_id"])
        if mine["pbx_call_id"] in generic:  # the call's own id (not an answering leg's)
            assert parents[other["pbx_call_id"]] == generic[mine["pbx_call_id"]]


# -- Asterisk ---------------------------------------------------------------------------------
def test_asterisk_cdr_csv_layout(samples):
    root = samples["asterisk"]
    names = sorted(p.name for p in (root / "telephony").iterdir())
    assert names[0] == "Master_2025-01-06.csv" and len(names) == SMALL["days"]
    rows = cdr_rows(root)
    first_start: dict[str, datetime] = {}
    for row in rows:
        pairs = dict(part.split("=", 1) for part in row["userfield"].split(";"))
        assert pairs["site"] in SITES and set(pairs) <= {"site", "ivr", "queue", "disposition"}
        match = UNIQUEID.match(row["uniqueid"])
        assert match and row["linkedid"] == row["uniqueid"], row
        start = local_to_utc(row["start"], pairs["site"])
        epoch = datetime(1970, 1, 1) + timedelta(seconds=int(match.group(1)))
        assert timedelta(0) <= start - epoch < timedelta(minutes=2)  # the channel's creation
        first_start.setdefault(row["uniqueid"], start)
        end = local_to_utc(row["end"], pairs["site"])
        assert int(row["duration"]) == (end - start).total_seconds()
        if row["answer"]:
            answer = local_to_utc(row["answer"], pairs["site"])
            assert start <= answer <= end
            assert int(row["billsec"]) == (end - answer).total_seconds()
        else:
            assert row["billsec"] == "0"
    assert all(  # the caller's channel was created when its call started
        first_start[u] == datetime(1970, 1, 1) + timedelta(seconds=int(u.split(".")[0]))
        for u in first_start
    )
    keys = {(row["uniqueid"], row["sequence"]) for row in rows}
    assert len(keys) == len({tuple(r.values()) for r in rows})  # overlap repeats rows exactly
    contexts = Counter(row["dcontext"] for row in rows)
    assert set(contexts) == {"from-pstn", "from-internal", "ext-local"}
    kinds = Counter(
        "voicemail" if row["lastapp"] == "VoiceMail"
        else f"{row['disposition']}{'+dst' if row['dstchannel'] else ''}"
        for row in rows
    )  # fmt: skip
    assert {"voicemail", "ANSWERED+dst", "ANSWERED", "NO ANSWER+dst", "BUSY"} <= set(kinds)
    assert kinds["FAILED"] + kinds["CONGESTION"] > 0
    internal = [row for row in rows if row["dcontext"] == "ext-local"]
    assert all(row["src"].isdigit() and row["dst"].isdigit() for row in internal)


def test_asterisk_crm_ids_are_linkedids(samples):
    linked = {row["linkedid"] for row in cdr_rows(samples["asterisk"])}
    ids = [a["pbx_call_id"] for a in activities(samples["asterisk"]) if a["pbx_call_id"]]
    assert ids and set(ids) <= linked


# -- Twilio -----------------------------------------------------------------------------------
def test_twilio_calls_layout(samples):
    root = samples["twilio"]
    folders = sorted(p.name for p in (root / "telephony" / "twilio").iterdir())
    assert folders == sorted(SITES)
    rows = twilio_rows(root)
    by_sid = {row["Sid"]: row for row in rows}
    assert all(SID.match(sid) for sid in by_sid)
    for row in rows:
        start = parsedate_to_datetime(row["StartTime"])
        end = parsedate_to_datetime(row["EndTime"])
        assert row["StartTime"].endswith(" +0000") and start <= end
        assert int(row["Duration"]) <= (end - start).total_seconds()
        if row["ParentCallSid"]:
            parent = by_sid[row["ParentCallSid"]]
            assert row["Direction"] == "outbound-dial" and parent["Direction"] == "inbound"
        else:
            assert row["Direction"] in ("inbound", "outbound-api")
    children = Counter(row["ParentCallSid"] for row in rows if row["ParentCallSid"])
    parents = [row for row in rows if row["Direction"] == "inbound"]
    # the IVR picks up: a completed parent; a person answering: a completed child with Duration
    answered = {
        row["ParentCallSid"] for row in rows
        if row["ParentCallSid"] and row["Status"] == "completed" and int(row["Duration"]) > 0
        and not row["AnsweredBy"]
    }  # fmt: skip
    completed = [row for row in parents if row["Status"] == "completed"]
    assert answered and len(answered) < len(completed)
    assert all(children[row["Sid"]] for row in parents if row["Sid"] in answered)
    statuses = Counter((row["Direction"], row["Status"]) for row in rows)
    assert {
        ("inbound", s) for s in ("completed", "no-answer", "busy", "canceled", "failed")
    } <= set(statuses)
    assert ("outbound-api", "completed") in statuses
    machine = [row for row in rows if row["AnsweredBy"]]
    assert machine and all(row["AnsweredBy"].startswith("machine_") for row in machine)
    assert {row["Direction"] for row in machine} == {"outbound-dial", "outbound-api"}


def test_twilio_crm_ids_are_sids(samples):
    sids = {row["Sid"] for row in twilio_rows(samples["twilio"])}
    ids = [a["pbx_call_id"] for a in activities(samples["twilio"]) if a["pbx_call_id"]]
    assert ids and set(ids) <= sids


# -- the ingest reads it --------------------------------------------------------------------
def ingest(landing: Path, database: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(database))
    summary = ingest_landing(con, landing, load_config(), b"unit-test-key")
    assert summary.files_refused == []
    return con


@pytest.mark.parametrize("name, fmt", [("asterisk", "asterisk_cdr"), ("twilio", "twilio")])
def test_ingest_loads_every_row(tmp_path, samples, name, fmt):
    con = ingest(samples[name], tmp_path / "w.duckdb")
    ledger = con.execute(
        "select format, status, sum(rows_read), sum(rows_rejected) "
        "from raw.load_ledger where file like 'telephony/%' group by all"
    ).fetchall()
    assert ledger == [(fmt, "loaded", ledger[0][2], 0)]
    assert con.execute("select count(*) from raw.rejected_rows").fetchone() == (0,)
    roots, sites = con.execute(
        "select count(distinct coalesce(nullif(parent_call_id, ''), call_id)), "
        "count(distinct site_resolved) from raw.telephony_legs"
    ).fetchone()
    generic = {
        row["call_id"] for row in generic_rows(samples["generic"]) if not row["parent_call_id"]
    }
    assert roots == len(generic)
    if name == "asterisk":
        assert sites == len(SITES)
        offsets = con.execute("select median_offset_seconds from raw.asterisk_clock_checks")
        assert all(abs(value) < 60 for (value,) in offsets.fetchall())
        directions = dict(
            con.execute(
                "select direction_normalized, count(*) from raw.telephony_legs group by 1"
            ).fetchall()
        )
        assert set(directions) == {"inbound", "outbound", "internal"}


@pytest.mark.parametrize("name", FORMATS)
def test_faults_in_the_format(tmp_path, name):
    summary = generate(tmp_path / "out", telephony_format=name, inject=list(FAULTS), **SMALL)
    notes = summary["faults"]
    assert {note.split(":")[0] for note in notes} == set(FAULTS)
    resent = list((tmp_path / "out" / "telephony").rglob("*_resent.csv"))
    assert len(resent) == 1
    original = resent[0].with_name(resent[0].name.replace("_resent", ""))
    assert resent[0].read_bytes() == original.read_bytes()
    [bad] = [int(n.split()[1]) for n in notes if re.match(r"malformed-rows: \d+ bad rows", n)]
    con = ingest(tmp_path / "out", tmp_path / "w.duckdb")
    reasons = [r for (r,) in con.execute("select reason from raw.rejected_rows").fetchall()]
    assert len(reasons) == bad
    assert sum("wrong field count" in r for r in reasons) == 2  # one short row, one truncated
    assert len({r.split(":")[0] for r in reasons}) == bad - 1  # one of each other reason


# -- the pipeline: one sample, three formats ---------------------------------------------------
def twilio_sites_configured() -> bool:
    """Whether the telephony_sources seed routes each twilio/<site>/ folder to its site."""
    rows = [match_source(f"twilio/{site}/calls_2025-01-06.csv", SOURCES) for site in SITES]
    return all(row and row.get("site") == site for row, site in zip(rows, SITES, strict=True))


@pytest.fixture(scope="module")
def marts_by_format(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name in ("generic", *FORMATS):
        root = tmp_path_factory.mktemp(f"pipeline-{name}")
        generate_sample(root / "landing", days=7, calls_per_day=40, telephony_format=name)
        outcome = run_isolated(root / "landing", root / "w.duckdb", root / "ringledger.duckdb")
        assert outcome.exit_code == 0, (
            name, outcome.errors, outcome.refused_files, outcome.gate_failures
        )  # fmt: skip
        out[name] = root / "ringledger.duckdb"
    return out


def facts(marts: Path) -> dict[str, object]:
    con = duckdb.connect(str(marts), read_only=True)
    try:

        def rows(sql: str) -> list[tuple]:
            return con.execute(sql).fetchall()

        return {
            "gates": rows("select gate, passed from marts.data_quality_results order by 1"),
            "calls": rows(
                "select count(*) filter (where direction = 'inbound'), "
                "count(*) filter (where is_missed), count(*) filter (where is_answered), "
                "count(*) filter (where direction = 'outbound') from marts.fct_calls"
            ),
            "episodes": rows(
                "select count(*), count(*) filter (where is_noise), "
                "count(first_attempt_at_utc), count(first_contact_at_utc), "
                "count(*) filter (where converted) from marts.fct_missed_call_episodes"
            ),
            "noise": rows(
                "select noise_reason, recovered_by, count(*) from marts.fct_missed_call_episodes "
                "group by all order by all"
            ),
            "by_site": rows(
                "select site, is_business_hours, sla_status, count(*) "
                "from marts.fct_missed_call_episodes group by all order by all"
            ),
            "by_site_hours": rows(
                "select site, is_business_hours, count(*) "
                "from marts.fct_missed_call_episodes group by all order by all"
            ),
            "intents": rows(
                "select intent, count(*) from marts.fct_missed_call_episodes "
                "group by all order by all"
            ),
            "percentiles": rows(
                "select week_start, episodes, p50_attempt_minutes, p90_attempt_minutes, "
                "p50_contact_minutes, p50_attempt_business_minutes "
                "from marts.mart_callback_delay_percentiles "
                "where intent = 'all' and hours_segment = 'all' and source = 'all' order by 1"
            ),
        }
    finally:
        con.close()


def close(ours: list[tuple], theirs: list[tuple], minutes: float = 0.05) -> bool:
    """Same rows; numbers within `minutes` (the formats write whole seconds)."""
    if len(ours) != len(theirs):
        return False
    for mine, other in zip(ours, theirs, strict=True):
        for a, b in zip(mine, other, strict=True):
            if isinstance(a, float) or isinstance(b, float):
                if a is None or b is None or abs(a - b) > minutes:
                    return False
            elif a != b:
                return False
    return True


@pytest.mark.slow
def test_three_formats_same_calls_misses_and_episodes(marts_by_format):
    """Generic, Asterisk and Twilio of one seed: every gate passes, and the same inbound
    calls, missed calls, episodes (by noise reason and recovery) and delay percentiles."""
    generic = facts(marts_by_format["generic"])
    assert generic["gates"] and all(passed for _, passed in generic["gates"])
    assert generic["calls"][0][0] > 100 and generic["episodes"][0][0] > 30
    for name in FORMATS:
        other = facts(marts_by_format[name])
        assert other["gates"] == generic["gates"], name
        for key in ("calls", "episodes", "noise"):
            assert other[key] == generic[key], (name, key)
        if name == "twilio" and not twilio_sites_configured():
            continue  # every Twilio folder is the default site: site calendars differ
        assert other["by_site_hours"] == generic["by_site_hours"], name
        assert close(other["percentiles"], generic["percentiles"]), name
        if name != "twilio":  # SLA status follows the intent, which Twilio cannot carry
            assert other["by_site"] == generic["by_site"], name
    # Twilio carries no IVR or queue: its intents may differ (docs/formats.md)
    assert facts(marts_by_format["asterisk"])["intents"] == generic["intents"]

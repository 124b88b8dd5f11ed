"""The sample generator: determinism, refusals, realism features and injected faults.

The realism tests read the default 90-day output back with the csv module, zoneinfo and
phonenumbers (never with the generator's own code), so they fail if a feature breaks.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from orchestration.config import load_config
from orchestration.generate import FAULTS, generate
from orchestration.generator.clock import SiteClock

CONFIG = load_config()
ZONES = {row["site"]: ZoneInfo(row["time_zone"]) for row in CONFIG.sites}
LINES = CONFIG.business_lines
BLOCKLIST = {row["caller_number"] for row in CONFIG.seeds["caller_blocklist"]}
MARKERS = CONFIG.unknown_markers
SHORT_ABANDON = float(CONFIG.vars["short_abandon_seconds"])
MIN_TALK = float(CONFIG.vars["min_connected_talk_seconds"])
TOLERANCE = float(CONFIG.vars["clock_skew_tolerance_seconds"])
HORIZON = timedelta(days=int(CONFIG.vars["callback_horizon_days"]))
WINDOW = timedelta(days=int(CONFIG.vars["conversion_window_days"]))
REPEAT = timedelta(minutes=int(CONFIG.vars["repeat_dial_window_minutes"]))
MAX_EXTENSION_DIGITS = int(CONFIG.vars["internal_extension_max_digits"])
MISSED = {"no_answer", "busy", "abandoned", "voicemail", "canceled", "failed"}
SMALL = {"days": 14, "calls_per_day": 60}


# -- reading the output back ----------------------------------------------------------------
def read_rows(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def read_entity(root: Path, pattern: str) -> list[dict[str, str]]:
    return [row for path in sorted(root.glob(pattern)) for row in read_rows(path)]


def to_utc(text: str, zone: ZoneInfo) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


@functools.cache
def e164(raw: str) -> str | None:
    """Normalized number, None for markers, extensions and invalid numbers."""
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_unknown(raw: str) -> bool:
    return raw.strip().lower() in MARKERS or not raw.strip()


def is_internal(raw: str) -> bool:
    digits = re.sub(r"\D", "", raw)
    return raw.strip().isdigit() and 1 <= len(digits) <= MAX_EXTENSION_DIGITS


def status_of(text: str) -> str:
    return re.sub(r"[-\s]", "_", text.strip().lower())


@dataclass
class Call:
    call_id: str
    site: str
    direction: str
    start: datetime
    caller: str
    callee: str
    legs: list[dict[str, str]] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return any(status_of(leg["status"]) == "answered" for leg in self.legs)

    @property
    def talk(self) -> float:
        answered = [leg for leg in self.legs if status_of(leg["status"]) == "answered"]
        return max((leg_talk(leg) for leg in answered), default=0.0)

    @property
    def dispositions(self) -> set[str]:
        return {status_of(leg["disposition"]) for leg in self.legs}


def leg_talk(leg: dict[str, str]) -> float:
    if leg["talk_seconds"]:
        return float(leg["talk_seconds"])
    zone = ZONES[leg["site"]]
    return (to_utc(leg["ended_at"], zone) - to_utc(leg["answered_at"], zone)).total_seconds()


@dataclass
class Landing:
    root: Path
    legs: dict[str, dict[str, str]]
    calls: dict[str, Call]
    contacts: list[dict[str, str]]
    opportunities: list[dict[str, str]]
    activities: list[dict[str, str]]
    forms: list[dict[str, str]]
    tracking: list[dict[str, str]]

    @property
    def business_lines(self) -> set[str]:
        return LINES | {row["tracking_number"] for row in self.tracking}

    def inbound(self) -> list[Call]:
        """Inbound calls to a business line from a caller who is not internal."""
        lines = self.business_lines
        return [
            c for c in self.calls.values()
            if c.direction == "inbound" and e164(c.callee) in lines and not is_internal(c.caller)
        ]  # fmt: skip


def load(root: Path) -> Landing:
    legs: dict[str, dict[str, str]] = {}
    for path in sorted((root / "telephony").glob("calls_*.csv")):
        for row in read_rows(path):
            row["_start"] = to_utc(row["started_at"], ZONES[row["site"]])
            legs[row["call_id"]] = row
    calls: dict[str, Call] = {}
    for leg in sorted(legs.values(), key=lambda r: r["_start"]):
        key = leg["parent_call_id"] or leg["call_id"]
        if key not in calls:
            calls[key] = Call(key, leg["site"], leg["direction"], leg["_start"],
                              leg["from_number"], leg["to_number"])  # fmt: skip
        if not leg["parent_call_id"]:
            call = calls[key]
            call.direction, call.start = leg["direction"], leg["_start"]
            call.caller, call.callee = leg["from_number"], leg["to_number"]
        calls[key].legs.append(leg)
    return Landing(
        root, legs, calls,
        read_entity(root, "crm/contacts_*.csv"), read_entity(root, "crm/opportunities_*.csv"),
        read_entity(root, "crm/activities_*.csv"), read_entity(root, "crm/form_submissions_*.csv"),
        read_rows(root / "marketing" / "tracking_numbers.csv"),
    )  # fmt: skip


def crm_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def skews(landing: Landing) -> list[float]:
    """CRM logged_at - PBX started_at over linked pairs (every leg the id reaches)."""
    by_id: dict[str, list[datetime]] = defaultdict(list)
    for leg in landing.legs.values():
        by_id[leg["call_id"]].append(leg["_start"])
        if leg["parent_call_id"]:
            by_id[leg["parent_call_id"]].append(leg["_start"])
    out = []
    for activity in landing.activities:
        for start in by_id.get(activity["pbx_call_id"], []):
            out.append((crm_time(activity["logged_at"]) - start).total_seconds())
    return out


@dataclass
class Episode:
    caller: str
    first_missed: datetime
    attempt: datetime | None = None
    contact: datetime | None = None
    converted: bool = False


def noise_calls(landing: Landing) -> set[str]:
    flagged = {a["pbx_call_id"] for a in landing.activities
               if status_of(a["disposition"]) in ("wrong_number", "spam")}  # fmt: skip
    return flagged | {
        c.call_id for c in landing.calls.values() if c.dispositions & {"wrong_number", "spam"}
    }


def episodes(landing: Landing) -> list[Episode]:
    """A rough rebuild of metrics.md sections 2, 4 and 6 over the generated files."""
    noise = noise_calls(landing)
    misses: dict[str, list[Call]] = defaultdict(list)
    answered_in: dict[str, list[datetime]] = defaultdict(list)
    for call in landing.inbound():
        number = e164(call.caller)
        if number is None or number in BLOCKLIST or call.call_id in noise:
            continue
        if call.answered:
            answered_in[number].append(call.start)
            continue
        wait = (to_utc(call.legs[0]["ended_at"], ZONES[call.site]) - call.start).total_seconds()
        short = (
            status_of(call.legs[0]["status"]) in ("abandoned", "canceled") and wait < SHORT_ABANDON
        )
        if not short:
            misses[number].append(call)
    attempts, connected = outbound_attempts(landing)
    identity = contact_identities(landing.contacts)
    opportunities = defaultdict(list)
    for opp in landing.opportunities:
        opportunities[identity.get(opp["contact_id"])].append(crm_time(opp["created_at"]))
    phone_identity = {
        e164(c[col]): identity[c["contact_id"]]
        for c in landing.contacts for col in ("phone", "mobile_phone") if c[col]
    }  # fmt: skip
    out = []
    for number, calls in misses.items():
        previous = None
        for call in sorted(calls, key=lambda c: c.start):
            if previous is None or call.start - previous > REPEAT:
                out.append(Episode(number, call.start))
            previous = call.start
    for episode in out:
        t0, until = episode.first_missed, episode.first_missed + HORIZON
        episode.attempt = min(
            (t for t in attempts[episode.caller] if t0 < t <= until), default=None
        )
        reached = [
            t for t in connected[episode.caller] + answered_in[episode.caller] if t0 < t <= until
        ]
        episode.contact = min(reached, default=None)
        owner = phone_identity.get(episode.caller)
        episode.converted = owner is not None and any(
            t0 < t <= t0 + WINDOW for t in opportunities[owner]
        )
    return out


def outbound_attempts(landing: Landing) -> tuple[dict[str, list], dict[str, list]]:
    attempts: dict[str, list[datetime]] = defaultdict(list)
    connected: dict[str, list[datetime]] = defaultdict(list)
    for call in landing.calls.values():
        if call.direction == "outbound" and (number := e164(call.callee)):
            attempts[number].append(call.start)
            if call.answered and call.talk >= MIN_TALK:
                connected[number].append(call.start)
    for activity in landing.activities:
        if activity["activity_type"] == "outbound_call" and not activity["pbx_call_id"]:
            number = e164(activity["phone"])
            attempts[number].append(crm_time(activity["logged_at"]))
            if (
                activity["disposition"] in ("connected", "answered", "completed")
                and float(activity["duration_seconds"]) >= MIN_TALK
            ):
                connected[number].append(crm_time(activity["logged_at"]))
    return attempts, connected


def contact_identities(contacts: list[dict[str, str]]) -> dict[str, str]:
    """contact_id -> smallest contact_id of its group of contacts sharing a number."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for contact in contacts:
        for col in ("phone", "mobile_phone"):
            if contact[col] and (number := e164(contact[col])):
                a, b = find(contact["contact_id"]), find(number)
                parent[max(a, b)] = min(a, b)
    return {c["contact_id"]: find(c["contact_id"]) for c in contacts}


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> tuple[dict, Landing]:
    """The default 90 days x 150 calls, as `ringledger generate` writes them."""
    root = tmp_path_factory.mktemp("default")
    return generate(root), load(root)


@pytest.fixture(scope="module")
def landing(default_run) -> Landing:
    return default_run[1]


@pytest.fixture(scope="module")
def found(landing) -> list[Episode]:
    return episodes(landing)


def small(tmp_path: Path, name: str, **kwargs) -> Path:
    root = tmp_path / name
    generate(root, **{**SMALL, **kwargs})
    return root


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# -- API: determinism and refusals -------------------------------------------------------------
def test_same_arguments_give_identical_bytes(tmp_path):
    first, second = small(tmp_path, "a"), small(tmp_path, "b")
    assert tree_bytes(first) == tree_bytes(second)
    generate(first, **SMALL)  # writing over itself is a no-op
    assert tree_bytes(first) == tree_bytes(second)


def test_independent_of_hash_randomization(tmp_path):
    """No set or str-hash order leaks into the output: a run under another hash seed (this
    process's is random unless PYTHONHASHSEED says otherwise) writes the same bytes."""
    script = (
        "import sys; from pathlib import Path; from orchestration.generate import generate; "
        "generate(Path(sys.argv[1]), days=3, calls_per_day=40)"
    )
    hash_seed = "1" if os.environ.get("PYTHONHASHSEED") == "0" else "0"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "other")], env=env, check=True)
    generate(tmp_path / "here", days=3, calls_per_day=40)
    assert tree_bytes(tmp_path / "here") == tree_bytes(tmp_path / "other")


def test_another_seed_gives_other_data(tmp_path):
    first, other = small(tmp_path, "a"), small(tmp_path, "b", seed=7)
    a, b = tree_bytes(first), tree_bytes(other)
    assert a.keys() == b.keys()
    assert a["telephony/calls_2025-01-06.csv"] != b["telephony/calls_2025-01-06.csv"]


def test_summary_counts_what_was_written(default_run):
    summary, landing = default_run
    files = [p for p in landing.root.rglob("*") if p.is_file()]
    assert summary["files"] == len(files)
    assert summary["legs"] == len(landing.legs)
    assert summary["calls"] == len(landing.calls)
    assert summary["contacts"] == len({c["contact_id"] for c in landing.contacts})
    assert summary["opportunities"] == len(landing.opportunities)
    assert summary["activities"] == len(landing.activities)
    assert summary["forms"] == len(landing.forms)
    assert summary["faults"] == []
    assert 0.8 < summary["calls"] / 90 / 150 < 1.2  # calls_per_day is about what it says


def test_progress_bar_changes_nothing(tmp_path, capsys):
    quiet = small(tmp_path, "quiet", days=2)
    shown = tmp_path / "shown"
    generate(shown, days=2, calls_per_day=SMALL["calls_per_day"], progress=True)
    assert tree_bytes(quiet) == tree_bytes(shown)
    assert capsys.readouterr().out == ""  # the bar goes to standard error


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": date.today() - timedelta(days=5), "days": 10}, "reaches past today"),
        ({"start": date.today(), "days": 1}, "reaches past today"),
        ({"days": 0}, "at least 1"),
        ({"calls_per_day": 0}, "at least 1"),
        ({"inject": ["clock-skew", "gremlins"]}, "unknown fault 'gremlins'"),
        ({"telephony_format": "csv9"}, "unknown telephony format"),
    ],
)
def test_refuses_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["asterisk", "twilio"])
def test_real_formats_write_the_same_crm(tmp_path, name):
    """The Asterisk and Twilio formats (tests/test_generate_formats.py) change only the
    telephony files and the ids CRM activities stamp, never the rest of the sample."""
    generic = small(tmp_path, "generic", days=3)
    other = small(tmp_path, name, days=3, telephony_format=name)
    same = {n: b for n, b in tree_bytes(generic).items() if not n.startswith("telephony/")}
    theirs = {n: b for n, b in tree_bytes(other).items() if not n.startswith("telephony/")}
    assert same.keys() == theirs.keys()
    assert {n for n in same if same[n] != theirs[n]} <= {
        n for n in same if n.startswith("crm/activities_")
    }


def test_yesterday_is_allowed(tmp_path):
    summary = generate(tmp_path, start=date.today() - timedelta(days=1), days=1, calls_per_day=5)
    assert summary["files"] >= 2


# -- layout and formats ---------------------------------------------------------------------
def test_layout_and_headers(landing):
    root = landing.root
    days = sorted(root.glob("telephony/calls_*.csv"))
    assert [p.name for p in days[:2]] == ["calls_2025-01-06.csv", "calls_2025-01-07.csv"]
    assert len(days) == 90
    assert next(csv.reader(days[0].open())) == [
        "call_id", "parent_call_id", "direction", "started_at", "answered_at", "ended_at",
        "from_number", "to_number", "status", "queue", "ivr_selection", "agent_id",
        "disposition", "site", "talk_seconds",
    ]  # fmt: skip
    for entity in ("contacts", "opportunities", "activities", "form_submissions"):
        assert len(list(root.glob(f"crm/{entity}_*.csv"))) >= 2, entity


def test_call_ids_unique_and_ring_groups(landing):
    for path in sorted(landing.root.glob("telephony/calls_*.csv")):
        ids = [row["call_id"] for row in read_rows(path)]
        assert len(ids) == len(set(ids)), path.name
    children = [leg for leg in landing.legs.values() if leg["parent_call_id"]]
    assert children and all(leg["parent_call_id"] in landing.legs for leg in children)
    assert all(re.fullmatch(r"[a-z]+-\d{8}-\d{6}(-L\d)?", i) for i in landing.legs)
    answered_children = defaultdict(int)
    for leg in children:
        answered_children[leg["parent_call_id"]] += status_of(leg["status"]) == "answered"
    assert max(answered_children.values()) == 1
    assert any(n == 0 for n in answered_children.values())


def test_daily_files_overlap_with_identical_rows(landing):
    files = sorted(landing.root.glob("telephony/calls_*.csv"))
    shared = 0
    for earlier, later in itertools.pairwise(files):
        a = set(earlier.read_text(encoding="utf-8").splitlines()[1:])
        b = set(later.read_text(encoding="utf-8").splitlines()[1:])
        shared += len(a & b)
        assert a & b, f"{later.name} repeats nothing of {earlier.name}"
        day_before = earlier.stem.removeprefix("calls_")
        for row in csv.reader(a & b):
            zone = ZONES[row[13]]
            assert to_utc(row[3], zone).astimezone(zone).date().isoformat() == day_before
    assert 5 < shared / (len(files) - 1) < len(landing.legs) / len(files) / 2


def test_timestamps_mostly_local_some_with_offset_or_z(landing):
    stamps = [leg["started_at"] for leg in landing.legs.values()]
    naive = [s for s in stamps if not re.search(r"(Z|[+-]\d\d:\d\d)$", s)]
    assert len(naive) / len(stamps) > 0.7
    assert any(s.endswith("Z") for s in stamps)
    assert any(re.search(r"-0[45]:00$", s) for s in stamps)
    assert all(re.search(r"T\d\d:\d\d:\d\d\.\d{6}", s) for s in stamps)


def in_dst_gap(wall: datetime, zone: ZoneInfo) -> bool:
    """A wall-clock time that does not exist in `zone` (it does not survive a round trip)."""
    back = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) != wall


def assert_no_naive_time_in_dst_gap(landing: Landing) -> int:
    checked = 0
    for leg in landing.legs.values():
        zone = ZONES[leg["site"]]
        for column in ("started_at", "answered_at", "ended_at"):
            value = leg[column]
            if value and datetime.fromisoformat(value).tzinfo is None:
                wall = datetime.fromisoformat(value)
                assert not in_dst_gap(wall, zone), f"{leg['call_id']} {column} in a DST gap"
                checked += 1
    return checked


def test_no_local_time_in_the_spring_forward_gap(landing):
    spring = [leg for leg in landing.legs.values() if leg["started_at"].startswith("2025-03-09")]
    assert spring, "the default period covers the March 9 DST change"
    assert assert_no_naive_time_in_dst_gap(landing) > 0


@pytest.mark.parametrize("style", ["local", "offset", "utc"])
def test_every_instant_reads_back_across_dst_changes(style):
    """Written times read back (naive = site zone, fold=0) as the very same instant, through
    the spring-forward gap and both passes of the repeated fall-back hour."""
    zone = ZONES[CONFIG.default_site]
    clock = SiteClock(zone)
    for day in (datetime(2025, 3, 9, 5), datetime(2025, 11, 2, 4)):
        for step in range(0, 4 * 60, 7):
            instant = day + timedelta(minutes=step, microseconds=123)
            text = clock.render(instant, style)
            assert to_utc(text, zone).replace(tzinfo=None) == instant, text


def test_fall_back_hour_is_unambiguous(tmp_path):
    landing = load(small(tmp_path, "fall", start=date(2025, 10, 27)))
    for leg in landing.legs.values():
        zone = ZONES[leg["site"]]
        times = [to_utc(leg[c], zone) for c in ("started_at", "answered_at", "ended_at") if leg[c]]
        assert times == sorted(times), leg["call_id"]


# -- realism ------------------------------------------------------------------------------------
def test_two_sites_in_their_own_time_zones(landing):
    sites = {c.site for c in landing.calls.values()}
    assert sites == set(ZONES) and len({str(z) for z in ZONES.values()}) >= 2


def open_now(site: str, instant: datetime) -> bool:
    wall = instant.astimezone(ZONES[site])
    minutes = wall.hour * 60 + wall.minute
    for row in CONFIG.seeds["business_hours"]:
        if row["site"] == site and int(row["day_of_week"]) == wall.isoweekday():
            opens, closes = (int(h) * 60 + int(m) for h, m in
                             (row["opens_at"].split(":"), row["closes_at"].split(":")))  # fmt: skip
            if opens <= minutes < closes:
                return True
    return False


def test_calls_follow_business_hours_with_after_hours_and_weekends(landing):
    inbound = landing.inbound()
    in_hours = sum(open_now(c.site, c.start) for c in inbound) / len(inbound)
    assert 0.6 < in_hours < 0.95
    weekend = [c for c in inbound if c.start.astimezone(ZONES[c.site]).isoweekday() >= 6]
    assert 0.02 < len(weekend) / len(inbound) < 0.2


def test_inbound_majority_and_callbacks_from_business_lines(landing):
    calls = list(landing.calls.values())
    inbound = [c for c in calls if c.direction == "inbound"]
    outbound = [c for c in calls if c.direction == "outbound"]
    assert len(inbound) > 0.6 * len(calls) and len(outbound) > 0.05 * len(calls)
    assert all(e164(c.caller) in LINES for c in outbound)
    assert all(e164(c.callee) is not None for c in outbound)


def test_generic_statuses_some_spelled_otherwise(landing):
    raw = [leg["status"] for leg in landing.legs.values()]
    assert {status_of(s) for s in raw} == MISSED | {"answered"}
    variants = [s for s in raw if s != status_of(s)]
    assert variants and len(variants) < 0.1 * len(raw)


def test_queues_and_ivr_from_the_seeds(landing):
    queues = {row["queue"] for row in CONFIG.seeds["queue_intents"]}
    options = {row["ivr_selection"] for row in CONFIG.seeds["ivr_intents"]}
    inbound = landing.inbound()
    seen_queues = {c.legs[0]["queue"] for c in inbound}
    seen_ivr = {c.legs[0]["ivr_selection"] for c in inbound}
    assert seen_queues - {""} == queues and "" in seen_queues
    assert seen_ivr - {""} == options and "" in seen_ivr


def test_repeat_dials_within_minutes(landing):
    misses = defaultdict(list)
    for call in landing.inbound():
        if not call.answered and e164(call.caller):
            misses[e164(call.caller)].append(call.start)
    bursts = 0
    for times in misses.values():
        times.sort()
        bursts += any(b - a <= timedelta(minutes=10) for a, b in itertools.pairwise(times))
    assert bursts >= 20


def test_short_abandons_below_the_configured_threshold(landing):
    waits = [
        (to_utc(c.legs[0]["ended_at"], ZONES[c.site]) - c.start).total_seconds()
        for c in landing.inbound()
        if status_of(c.legs[0]["status"]) == "abandoned"
    ]
    short = [w for w in waits if w < SHORT_ABANDON]
    assert short and len(short) < len(waits) / 2


def test_noise_callers(landing):
    inbound = landing.inbound()
    assert any(e164(c.caller) in BLOCKLIST for c in inbound)
    unknown = [c.caller for c in inbound if is_unknown(c.caller)]
    assert "" in unknown and any(u for u in unknown)
    assert any(c.dispositions & {"spam"} for c in inbound)
    assert any(c.dispositions & {"wrong_number"} for c in inbound)
    linked = [a for a in landing.activities if a["pbx_call_id"]]
    flagged = {status_of(a["disposition"]) for a in linked}
    assert {"wrong_number", "spam"} <= flagged


DIRTY_FORMATS = {
    "paren": r"\(\d{3}\) \d{3}-\d{4}",
    "dots": r"\+1 \d{3}\.\d{3}\.\d{4}",
    "digits11": r"1\d{10}",
    "extension": r"\d{3}-\d{3}-\d{4} x\d+",
    "e164": r"\+1\d{10}",
}


def test_dirty_but_valid_number_formats(landing):
    callers = [c.caller for c in landing.inbound() if not is_unknown(c.caller)]
    for name, pattern in DIRTY_FORMATS.items():
        matching = [n for n in callers if re.fullmatch(pattern, n)]
        assert matching, name
        assert all(e164(n) for n in matching), (name, [n for n in matching if not e164(n)][:3])
    crm_numbers = [c[col] for c in landing.contacts for col in ("phone", "mobile_phone") if c[col]]
    assert len({re.sub(r"\d", "9", n) for n in crm_numbers}) >= 3
    assert all(e164(n) for n in crm_numbers)
    assert all(e164(row["tracking_number"]) for row in landing.tracking)


def invalid_share(landing: Landing) -> tuple[int, float]:
    known = [c.caller for c in landing.inbound() if not is_unknown(c.caller)]
    invalid = [n for n in known if e164(n) is None]
    return len(invalid), len(invalid) / len(known)


def test_few_invalid_callers_without_the_fault(landing):
    count, share = invalid_share(landing)
    assert count > 0 and share < 0.005


def test_internal_extension_calls(landing):
    internal = [
        c for c in landing.calls.values() if is_internal(c.caller) and is_internal(c.callee)
    ]
    assert len(internal) > 50 and {c.direction for c in internal} == {"inbound"}
    assert {len(c.caller) for c in internal} <= set(range(3, 5))


def test_voicemail_pickups(landing):
    voicemail = [c for c in landing.inbound() if status_of(c.legs[0]["status"]) == "voicemail"]
    assert voicemail and all(c.legs[0]["answered_at"] for c in voicemail)
    assert not any(c.answered for c in voicemail)


def test_callbacks_long_tailed_with_some_never(found):
    assert len(found) > 500
    delays = [(e.attempt - e.first_missed).total_seconds() / 60 for e in found if e.attempt]
    never = 1 - len(delays) / len(found)
    assert 20 <= statistics.median(delays) <= 90
    assert max(delays) > 24 * 60
    assert 0.08 <= never <= 0.35


def test_callbacks_not_connected_and_inbound_recoveries(landing, found):
    outbound = [c for c in landing.calls.values() if c.direction == "outbound"]
    statuses = {status_of(c.legs[0]["status"]) for c in outbound}
    assert {"no_answer", "voicemail", "answered"} <= statuses
    assert any(c.answered and c.talk < MIN_TALK for c in outbound)
    recovered = [e for e in found if e.contact and (e.attempt is None or e.contact < e.attempt)]
    assert len(recovered) >= 10


def test_crm_contacts_cover_most_callers_with_duplicates(landing):
    numbers = {
        e164(c[col]) for c in landing.contacts for col in ("phone", "mobile_phone") if c[col]
    }
    callers = {e164(c.caller) for c in landing.inbound()} - {None} - BLOCKLIST
    assert len(callers & numbers) / len(callers) > 0.6
    assert {c["lifecycle"] for c in landing.contacts} == {"lead", "customer"}
    groups = defaultdict(set)
    for contact_id, identity in contact_identities(landing.contacts).items():
        groups[identity].add(contact_id)
    assert any(len(members) == 2 for members in groups.values())
    assert any(len(members) >= 3 for members in groups.values())
    phones = defaultdict(set)
    for c in landing.contacts:
        phones[e164(c["phone"])].add(c["contact_id"])
    mobiles = {e164(c["mobile_phone"]) for c in landing.contacts if c["mobile_phone"]}
    assert any(len(ids) > 1 for ids in phones.values())  # two records, one phone
    assert mobiles & set(phones)  # one's mobile is another's phone


def test_opportunities_are_consistent(landing):
    contact_ids = {c["contact_id"] for c in landing.contacts}
    stages = set()
    for opp in landing.opportunities:
        stages.add(opp["stage"])
        closed, won = opp["is_closed"] == "true", opp["is_won"] == "true"
        assert closed == opp["stage"].startswith("Closed") == bool(opp["closed_at"])
        assert won == (opp["stage"] == "Closed Won")
        assert float(opp["amount"]) > 0 and opp["contact_id"] in contact_ids
        if closed:
            assert crm_time(opp["closed_at"]) > crm_time(opp["created_at"])
    assert {"Closed Won", "Closed Lost"} < stages
    amounts = sorted(float(o["amount"]) for o in landing.opportunities)
    assert amounts[-1] > 3 * statistics.median(amounts)  # long right tail


def test_conversion_falls_with_contact_delay(found):

    def rate(selected: list[Episode]) -> float:
        assert len(selected) >= 40
        return sum(e.converted for e in selected) / len(selected)

    fast = [e for e in found if e.contact and e.contact - e.first_missed <= timedelta(minutes=15)]
    slow = [e for e in found if e.contact and e.contact - e.first_missed > timedelta(hours=4)]
    never = [e for e in found if e.contact is None]
    assert rate(fast) > rate(slow) + 0.08
    assert rate(fast) > rate(never) + 0.15


def test_crm_activities_linked_to_pbx_calls(landing):
    linked = [a for a in landing.activities if a["pbx_call_id"]]
    assert all(a["pbx_call_id"] in landing.legs for a in linked)
    types = {(a["activity_type"], landing.legs[a["pbx_call_id"]]["direction"]) for a in linked}
    assert {("outbound_call", "outbound"), ("inbound_call", "inbound")} <= types
    assert any(landing.legs[a["pbx_call_id"]]["parent_call_id"] for a in linked)  # a child leg
    outbound = [c for c in landing.calls.values() if c.direction == "outbound"]
    logged = {a["pbx_call_id"] for a in linked if a["activity_type"] == "outbound_call"}
    assert len(logged) / len(outbound) > 0.6
    values = skews(landing)
    assert statistics.median(abs(s) for s in values) < 30
    assert 10 < statistics.stdev(values) < 40


def test_crm_only_outbound_activities(landing):
    crm_only = [a for a in landing.activities if a["activity_type"] == "outbound_call"
                and not a["pbx_call_id"]]  # fmt: skip
    assert len(crm_only) >= 20
    assert {a["disposition"] for a in crm_only} >= {"connected", "no_answer", "voicemail"}
    assert all(a["duration_seconds"].isdigit() for a in crm_only)


def test_crm_timestamps_are_utc_with_z(landing):
    for rows, column in (
        (landing.activities, "logged_at"),
        (landing.contacts, "created_at"),
        (landing.forms, "submitted_at"),
        (landing.opportunities, "created_at"),
    ):
        assert all(row[column].endswith("Z") for row in rows), column


def test_web_forms_before_calls(landing):
    assert {f["form_type"] for f in landing.forms} == {
        "quote",
        "pricing",
        "demo",
        "contact_sales",
        "support",
    }
    first_call: dict[str, datetime] = {}
    for call in sorted(landing.inbound(), key=lambda c: c.start):
        first_call.setdefault(e164(call.caller), call.start)
    before = [
        f for f in landing.forms
        if (t := first_call.get(e164(f["phone"]))) and timedelta(0) < t - crm_time(f["submitted_at"])
        <= timedelta(days=7)
    ]  # fmt: skip
    assert len(before) >= 50


def windows(tracking: list[dict[str, str]]) -> dict[str, list[tuple[date, date]]]:
    out = defaultdict(list)
    for row in tracking:
        to = date.fromisoformat(row["valid_to"]) if row["valid_to"] else date.max
        out[row["tracking_number"]].append((date.fromisoformat(row["valid_from"]), to))
    return out


def overlapping(tracking: list[dict[str, str]]) -> list[str]:
    bad = []
    for number, spans in windows(tracking).items():
        spans.sort()
        bad += [number for a, b in itertools.pairwise(spans) if b[0] < a[1]]
    return bad


def test_tracking_numbers_cover_the_period(landing):
    tracking = landing.tracking
    assert not overlapping(tracking)
    numbers = {row["tracking_number"] for row in tracking}
    assert not numbers & LINES and len({row["campaign"] for row in tracking}) >= 5
    assert {row["default_intent"] for row in tracking} >= {"", "high_intent"}
    assert len(numbers) < len(tracking)  # a number changes campaign
    spans = windows(tracking)
    dialed = [c for c in landing.inbound() if e164(c.callee) in numbers]
    assert len(dialed) > 0.3 * len(landing.inbound())
    for call in dialed:
        day = call.start.date()
        covering = [s for s in spans[e164(call.callee)] if s[0] <= day < s[1]]
        assert len(covering) == 1, call.call_id
    callees = {e164(c.callee) for c in landing.inbound()}
    assert callees <= landing.business_lines


# -- faults -----------------------------------------------------------------------------------
def test_every_fault_is_known():
    assert set(FAULTS) == {
        "clock-skew",
        "timezone-error",
        "dirty-numbers",
        "tracking-overlap",
        "duplicate-file",
        "malformed-rows",
    }


@pytest.fixture(scope="module")
def small_clean(tmp_path_factory) -> Landing:
    root = tmp_path_factory.mktemp("clean")
    generate(root, **SMALL)
    return load(root)


def faulty(tmp_path: Path, *names: str) -> tuple[dict, Path]:
    root = tmp_path / "faulty"
    return generate(root, inject=list(names), **SMALL), root


def median_skew_by_day(landing: Landing) -> list[float]:
    by_day = defaultdict(list)
    stamps = {leg["call_id"]: leg["_start"] for leg in landing.legs.values()}
    for activity in landing.activities:
        if activity["pbx_call_id"] in stamps:
            start = stamps[activity["pbx_call_id"]]
            by_day[start.date()].append((crm_time(activity["logged_at"]) - start).total_seconds())
    return [statistics.median(v) for v in by_day.values()]


def test_clean_crm_clock_is_within_tolerance(small_clean):
    assert statistics.median(abs(s) for s in skews(small_clean)) < TOLERANCE
    assert all(abs(m) < TOLERANCE for m in median_skew_by_day(small_clean))


def test_clock_skew_fault(tmp_path):
    summary, root = faulty(tmp_path, "clock-skew")
    medians = median_skew_by_day(load(root))
    assert statistics.median(abs(s) for s in skews(load(root))) > TOLERANCE
    assert all(abs(m) > TOLERANCE for m in medians)
    assert all(min(abs(m) % 3600, 3600 - abs(m) % 3600) > 60 for m in medians)
    assert any(note.startswith("clock-skew") for note in summary["faults"])


def test_timezone_error_fault(tmp_path):
    _, root = faulty(tmp_path, "timezone-error")
    medians = median_skew_by_day(load(root))
    assert all(abs(m) >= 3600 - 60 for m in medians)
    assert all(min(abs(m) % 3600, 3600 - abs(m) % 3600) <= 60 for m in medians)


def test_dirty_numbers_fault(tmp_path):
    _, root = faulty(tmp_path, "dirty-numbers")
    _count, share = invalid_share(load(root))
    assert share > 0.01


def test_tracking_overlap_fault(tmp_path, small_clean):
    _, root = faulty(tmp_path, "tracking-overlap")
    assert not overlapping(small_clean.tracking)
    assert overlapping(read_rows(root / "marketing" / "tracking_numbers.csv"))


def test_duplicate_file_fault(tmp_path, small_clean):
    _, root = faulty(tmp_path, "duplicate-file")
    resent = list((root / "telephony").glob("*_resent.csv"))
    assert len(resent) == 1
    original = resent[0].with_name(resent[0].name.replace("_resent", ""))
    assert resent[0].read_bytes() == original.read_bytes()
    assert not list((small_clean.root / "telephony").glob("*_resent.csv"))


def test_malformed_rows_fault(tmp_path, small_clean):
    summary, root = faulty(tmp_path, "malformed-rows")
    clean_files = tree_bytes(small_clean.root)
    changed = [name for name, data in tree_bytes(root).items() if clean_files.get(name) != data]
    assert len(changed) == 2 and all(name.startswith("telephony/") for name in changed)
    texts = {}
    for name in changed:
        raw = (root / name).read_bytes()
        texts[name] = raw
    cp1252 = [n for n, raw in texts.items() if b"\r\n" in raw]
    broken = [n for n in changed if n not in cp1252]
    assert len(cp1252) == 1 and len(broken) == 1
    # the CP1252 file: CRLF, an accented byte, and the very same rows once decoded
    raw = texts[cp1252[0]]
    assert b"\xe9" in raw or b"\xed" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    decoded = raw.decode("cp1252").replace("\r\n", "\n").splitlines()
    clean = clean_files[cp1252[0]].decode("utf-8").splitlines()
    assert set(clean) <= set(decoded) and all(
        len(next(csv.reader([line]))) == 15 for line in decoded
    )
    # the broken file: the clean rows plus one bad row per reason and a truncated last line
    raw = texts[broken[0]]
    assert not raw.endswith(b"\n")
    lines = raw.decode("utf-8").split("\n")
    extra = [
        line for line in lines if line not in set(clean_files[broken[0]].decode().splitlines())
    ]
    rows = [next(csv.reader([line])) for line in extra]
    assert any(len(r) != 15 for r in rows[:-1]) and len(rows[-1]) < 15
    full = [dict(zip(read_rows(root / broken[0])[0].keys(), r)) for r in rows if len(r) == 15]
    reasons = set()
    for row in full:
        zone = ZONES[row["site"]]
        if status_of(row["status"]) not in MISSED | {"answered"}:
            reasons.add("status")
            continue
        try:
            start, end = to_utc(row["started_at"], zone), to_utc(row["ended_at"], zone)
        except ValueError:
            reasons.add("timestamp")
            continue
        if in_dst_gap(datetime.fromisoformat(row["started_at"]), zone):
            reasons.add("dst_gap")
        if end < start:
            reasons.add("ended_before_started")
        if row["talk_seconds"].startswith("-"):
            reasons.add("negative")
        if row["answered_at"] and not start <= to_utc(row["answered_at"], zone) <= end:
            reasons.add("answered_outside")
    assert reasons == {"status", "timestamp", "ended_before_started", "negative",
                       "answered_outside", "dst_gap"}  # fmt: skip
    assert any(note.startswith("malformed-rows") for note in summary["faults"])


@pytest.mark.parametrize(
    "name, touched",
    [
        ("clock-skew", "crm/activities_"),
        ("timezone-error", "crm/activities_"),
        ("dirty-numbers", "telephony/calls_"),
        ("tracking-overlap", "marketing/tracking_numbers"),
        ("duplicate-file", "telephony/calls_"),
        ("malformed-rows", "telephony/calls_"),
    ],
)
def test_a_fault_changes_only_its_own_files(tmp_path, small_clean, name, touched):
    _, root = faulty(tmp_path, name)
    clean, dirty = tree_bytes(small_clean.root), tree_bytes(root)
    changed = {n for n in clean.keys() | dirty.keys() if clean.get(n) != dirty.get(n)}
    assert changed and all(n.startswith(touched) for n in changed)


def test_faults_combine(tmp_path):
    summary, root = faulty(tmp_path, *FAULTS)
    assert {note.split(":")[0] for note in summary["faults"]} == set(FAULTS)
    assert len(list((root / "telephony").glob("*_resent.csv"))) == 1

"""Incremental daily loads (issue 7): a new day's export files added to an existing warehouse
give the same published marts as a full rebuild of a fresh warehouse on the same files.

The new day is the last of the period: its telephony file repeats the previous day's last
hour (the same legs delivered twice), its misses straddle midnight with the day before, and
the callbacks of the day before arrive in it; the CRM exports of that day update contacts and
opportunities created earlier. The ingest loads only the new files (the ledger skips the
unchanged ones) and dbt builds the per-call models and the episodes per caller number incrementally (orchestration/incremental.py):
a leg of the first day is delivered again in the new day's file under another parent, so that
the call it belonged to disappears and another one gains it. Every intermediate table equals
the full rebuild's too (except the load bookkeeping columns, whose load order differs).
"""

from __future__ import annotations

import csv
import shutil
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import phonenumbers
import pytest

from dbt_helpers import run_dbt

from orchestration import incremental
from orchestration.config import load_config
from orchestration.generator import generate
from orchestration.runner import run_pipeline

pytestmark = pytest.mark.slow

START = date(2025, 3, 3)  # a Monday: the CRM's weekly export on Sunday 03-09, the last on 03-11
DAYS = 9
LAST_DAY = "2025-03-11"


# differ between a daily and a full load of the same files (the order files were loaded in)
BOOKKEEPING = {"load_id", "load_seq", "loaded_at"}
# what the last build recomputed: differs between an incremental and a full build by design
TOUCHED = "int_calls_touched"
TOUCHED_CALLERS = "int_callers_touched"
TOUCHED_ACTIVITIES = "int_crm_activities_touched"
SELECTED_EPISODES = "int_missed_call_episodes_selected"
CONFIG = load_config()


def _tables(path, schema, skip_tables=(), skip_columns=()) -> dict[str, list[tuple]]:
    """Every table of `schema` (but `skip_tables`) as sorted rows, without `skip_columns`."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? order by table_name",
                [schema],
            ).fetchall()
            if row[0] not in skip_tables
        ]
        result = {}
        for table in tables:
            columns = [
                row[0]
                for row in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, table],
                ).fetchall()
                if row[0] not in skip_columns
            ]
            rows = con.execute(f"select {', '.join(columns)} from {schema}.{table}").fetchall()
            result[table] = sorted(rows, key=lambda row: tuple((v is None, str(v)) for v in row))
        return result


def _marts(path) -> dict[str, list[tuple]]:
    return _tables(path, "marts", skip_tables={"data_quality_results"})


def _intermediate(path) -> dict[str, list[tuple]]:
    return _tables(path, "intermediate", skip_columns=BOOKKEEPING)


def _valid(text: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, "US"))
    except phonenumbers.NumberParseException:
        return False


def _e164(text: str) -> str:
    return phonenumbers.format_number(
        phonenumbers.parse(text, "US"), phonenumbers.PhoneNumberFormat.E164
    )


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _quiet_misses(landing, new_day: list, skip: set[str]) -> list[dict]:
    """First-day missed inbound calls of one leg whose caller appears in no file of the new
    day: only the changes made below can put their numbers in the day's build."""
    new_day_digits = "".join(_digits(path.read_text(errors="replace")) for path in new_day)
    first_day = sorted((landing / "telephony").glob("*.csv"))[0]
    with first_day.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    parents = {row["parent_call_id"] for row in rows}
    return [
        row
        for row in rows
        if not row["parent_call_id"]
        and row["call_id"] not in parents | skip
        and row["direction"] == "inbound"
        and row["status"] in ("no_answer", "busy")
        and _digits(row["from_number"])[-10:] not in new_day_digits
        and _valid(row["from_number"])
    ]


def _numberless_misses(warehouse, landing) -> list[dict]:
    """Missed inbound one-leg calls already built without a valid caller number (BLOCKED,
    ANONYMOUS, empty; each an episode of its own, noise 'unreachable'), as their export rows."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        call_ids = {
            row[0]
            for row in con.execute(
                "select flagged.call_id from intermediate.int_missed_calls_flagged as flagged "
                "join intermediate.int_calls as calls using (call_key) "
                "where flagged.caller_number_e164 is null and calls.legs = 1 "
                "and calls.direction = 'inbound'"
            ).fetchall()
        }
    found = {}
    for path in sorted((landing / "telephony").glob("*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["call_id"] in call_ids and not row["parent_call_id"]:
                    found[row["call_id"]] = row
    return [found[call_id] for call_id in sorted(found)]


def _append_csv(path, row: dict) -> None:
    with path.open(newline="") as handle:
        header = next(csv.reader(handle))
    with path.open("a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow([row.get(c, "") for c in header])


def _caller_numbers(path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select distinct caller_number_e164 from intermediate.int_missed_call_episodes_collapsed "
            "where caller_number_e164 is not null"
        ).fetchall()


def _crm_facts(path, form_number: str, won_number: str) -> tuple[int, int]:
    """The episodes of one caller number with intent rule 3 (a sales form), and those of
    another that converted, in the warehouse's episode mart."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select count(*) filter (where s.caller_number_e164 = ? and e.intent_rule = 3), "
            "count(*) filter (where s.caller_number_e164 = ? and e.converted) "
            "from marts.fct_missed_call_episodes e "
            "join intermediate.int_missed_call_episodes_enriched s using (episode_id)",
            [form_number, won_number],
        ).fetchone()


def _redeliver_converting_opportunity(warehouse, landing, new_day: list) -> None:
    """Append to the new day's opportunities export a copy of an opportunity of an earlier
    export that converts an episode, won now with a new amount (id and creation unchanged)."""
    new_file = next(p for p in new_day if p.name.startswith("opportunities"))
    new_ids = {row["opportunity_id"] for row in csv.DictReader(new_file.open(newline=""))}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        matched = {
            row[0]
            for row in con.execute(
                "select distinct opportunity_id from intermediate.int_episode_conversions_matched"
            ).fetchall()
        }
    earlier = [
        row
        for path in sorted((landing / "crm").glob("opportunities_*.csv"))
        if path != new_file
        for row in csv.DictReader(path.open(newline=""))
        if row["opportunity_id"] in matched - new_ids
    ]
    assert earlier, "no converting opportunity of an earlier export to deliver again"
    row = earlier[-1]
    _append_csv(
        new_file,
        {
            **row,
            "amount": f"{float(row['amount'] or 0) + 1234.5:.2f}",
            "stage": "Closed Won",
            "closed_at": f"{LAST_DAY}T09:00:00Z",
            "is_won": "true",
            "is_closed": "true",
        },
    )


def _move_a_leg(landing, new_day_file) -> tuple[str, str]:
    """Append to the new day's telephony file a copy of a first-day leg that was a call of
    its own, now under the parent of another first-day call. Returns (leg, new parent)."""
    first_day = sorted((landing / "telephony").glob("*.csv"))[0]
    with first_day.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if not row["parent_call_id"]]
    moved, parent = rows[0], rows[1]
    moved["parent_call_id"] = parent["call_id"]
    with new_day_file.open(newline="") as handle:
        header = next(csv.reader(handle))
    with new_day_file.open("a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow([moved.get(c, "") for c in header])
    return moved["call_id"], parent["call_id"]


REDIALER = "+12125550179"
# a redial inside the repeat-dial window, and the callback horizon, as configured
REDIAL_STEP = timedelta(minutes=int(CONFIG.vars["repeat_dial_window_minutes"]) - 5)
HORIZON = timedelta(days=int(CONFIG.vars["callback_horizon_days"]))
NYC = ZoneInfo(next(row["time_zone"] for row in CONFIG.sites if row["site"] == "nyc"))


def _redial_for_days(landing, new_day_file, template: dict) -> int:
    """One caller who misses a call every REDIAL_STEP from the first morning to the end of
    the day before the new day (one episode longer than the callback horizon, in the first
    day's export), and once more in the new day's export, within the window of the last: the
    new miss joins the old episode although its first miss is beyond the horizon of the new
    call. Returns the misses written before the new day."""
    zone, step = NYC, REDIAL_STEP
    assert template["site"] == "nyc", template
    first_day = sorted((landing / "telephony").glob("*.csv"))[0]
    at = datetime(START.year, START.month, START.day, 13, 0, tzinfo=timezone.utc)
    end = datetime.fromisoformat(f"{LAST_DAY}T00:00:00").replace(tzinfo=zone)
    # the new day's miss must lie beyond the first miss's horizon
    assert end - step - at > HORIZON, (at, end, HORIZON)
    written = 0
    while True:
        target = first_day if at + step < end else new_day_file
        local = at.astimezone(zone).replace(tzinfo=None)
        _append_csv(
            target,
            {
                **template,
                "call_id": f"nyc-test-redial-{written:04d}",
                "parent_call_id": "",
                "started_at": local.isoformat(timespec="seconds"),
                "answered_at": "",
                "ended_at": (local + timedelta(seconds=40)).isoformat(timespec="seconds"),
                "from_number": REDIALER,
                "status": "no_answer",
                "disposition": "",
                "agent_id": "",
                "talk_seconds": "0",
            },
        )
        if target == new_day_file:
            return written
        written += 1
        at += step


def _day_scope(warehouse: Path, work: Path, watermark: int) -> dict[str, int]:
    """What the day's build recomputed: the number-less rows of the collapsed episodes'
    recomputed misses and of the chain's scope, and the scope's episodes of the touched
    callers against all of theirs. Both models compiled against a copy of the warehouse whose
    watermark is put back to before the day (the day's touched calls and callers and the
    fingerprints as the build left them), their SQL run there."""
    copy = work / "warehouse.duckdb"
    work.mkdir()
    shutil.copy2(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute(
            "update raw.build_state set through_load_seq = ? where name = 'built'", [watermark]
        )
    models = ["int_missed_call_episodes_collapsed", SELECTED_EPISODES]
    completed = run_dbt(["compile", "--select", *models], copy, work / "target")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    counts = {}
    touched = "select caller_number_e164 from intermediate.int_callers_touched"
    with duckdb.connect(str(copy), read_only=True) as con:
        for model in models:
            sql = next((work / "target" / "compiled").rglob(f"{model}.sql")).read_text()
            counts[model] = con.execute(
                f"select count(*) from (\n{sql}\n) as recomputed where caller_number_e164 is null"
            ).fetchone()[0]
            if model == SELECTED_EPISODES:
                counts["touched_in_scope"] = con.execute(
                    f"select count(*) from (\n{sql}\n) as recomputed "
                    f"where caller_number_e164 in ({touched})"
                ).fetchone()[0]
        counts["touched_episodes"] = con.execute(
            "select count(*) from intermediate.int_missed_call_episodes_collapsed "
            f"where caller_number_e164 in ({touched})"
        ).fetchone()[0]
    return counts


def test_new_day_added_equals_full_rebuild(tmp_path):
    full_landing = tmp_path / "landing_full"
    generate(full_landing, days=DAYS, calls_per_day=120, seed=11, start=START)
    new_day = sorted(p for p in full_landing.rglob("*") if p.is_file() and LAST_DAY in p.name)
    assert any(p.parent.name == "telephony" for p in new_day)
    assert any(p.parent.name == "crm" for p in new_day)
    new_day_calls = next(p for p in new_day if p.parent.name == "telephony")
    assert new_day_calls.suffix == ".csv"
    moved_leg, new_parent = _move_a_leg(full_landing, new_day_calls)
    # an activity of an earlier export names the moved leg: its link follows the leg
    earlier_activities = sorted((full_landing / "crm").glob("activities_*.csv"))[0]
    assert LAST_DAY not in earlier_activities.name
    _append_csv(
        earlier_activities,
        {
            "activity_id": "ACT-TEST-MOVED-LEG",
            "activity_type": "inbound_call",
            "logged_at": "2025-03-04T12:00:00Z",
            "pbx_call_id": moved_leg,
            "disposition": "answered",
            "duration_seconds": "60",
        },
    )
    # a first-day miss delivered again with another caller number (the episodes of both
    # numbers change), and a first-day miss named by a new wrong-number CRM activity (it
    # becomes noise): neither caller calls on the new day
    quiet = _quiet_misses(full_landing, new_day, {moved_leg, new_parent})
    renumbered, flagged = quiet[:2]
    _append_csv(new_day_calls, {**renumbered, "from_number": "+12125550177"})
    new_day_activities = next(p for p in new_day if p.name.startswith("activities"))
    _append_csv(
        new_day_activities,
        {
            "activity_id": "ACT-TEST-WRONG-NUMBER",
            "activity_type": "outbound_call",
            "logged_at": f"{LAST_DAY}T12:00:00Z",
            "pbx_call_id": flagged["call_id"],
            "disposition": "wrong_number",
            "duration_seconds": "20",
        },
    )
    # a caller whose one episode has lasted longer than the callback horizon gets one more miss
    redials = _redial_for_days(
        full_landing, new_day_calls, next(row for row in quiet[2:] if row["site"] == "nyc")
    )
    # CRM-only changes to two other quiet callers' old episodes, which only their fingerprints
    # (int_episode_callers_fingerprinted) bring into the day's build: a sales form submitted
    # the day before one's miss (intent rule 3), and a new contact with an opportunity created
    # the day after the other's (a conversion)
    taken = {_digits(row["from_number"]) for row in (renumbered, flagged)}
    form_caller = next(
        row
        for row in quiet[2:]
        if not row["ivr_selection"] and _digits(row["from_number"]) not in taken
    )
    taken.add(_digits(form_caller["from_number"]))
    won_caller = next(row for row in quiet[2:] if _digits(row["from_number"]) not in taken)
    missed_at = {
        row["call_id"]: datetime.fromisoformat(row["started_at"])
        for row in (form_caller, won_caller)
    }
    _append_csv(
        next(p for p in new_day if p.name.startswith("form_submissions")),
        {
            "submission_id": "FS-TEST-QUOTE",
            "submitted_at": f"{missed_at[form_caller['call_id']] - timedelta(days=1):%Y-%m-%dT%H:%M:%S}Z",
            "phone": form_caller["from_number"],
            "form_type": "quote",
        },
    )
    _append_csv(
        next(p for p in new_day if p.name.startswith("contacts")),
        {
            "contact_id": "CT-TEST-NEW",
            "phone": won_caller["from_number"],
            "created_at": "2024-01-02T10:00:00Z",
            "updated_at": f"{LAST_DAY}T08:00:00Z",
            "lifecycle": "lead",
            "owner": "Test Owner",
        },
    )
    _append_csv(
        next(p for p in new_day if p.name.startswith("opportunities")),
        {
            "opportunity_id": "OPP-TEST-NEW",
            "contact_id": "CT-TEST-NEW",
            "created_at": f"{missed_at[won_caller['call_id']] + timedelta(days=1):%Y-%m-%dT%H:%M:%S}Z",
            "stage": "Prospecting",
            "amount": "1000",
            "is_won": "false",
            "is_closed": "false",
        },
    )

    # the warehouse holding every day but the last, then the last day's files added
    daily_landing = tmp_path / "landing_daily"
    shutil.copytree(full_landing, daily_landing)
    for path in new_day:
        (daily_landing / path.relative_to(full_landing)).unlink()
    daily = tmp_path / "daily"
    first = run_pipeline(daily_landing, daily / "warehouse.duckdb", daily / "ringledger.duckdb")
    assert first.exit_code == 0, first.errors
    # two number-less misses of the first build: one delivered again with a caller number
    # (its number-less episode goes, a numbered one comes), one named by a new wrong-number
    # CRM activity (noise 'unreachable' becomes 'wrong_number'); the other number-less
    # episodes are not recomputed (macros/incremental.sql, per-caller models)
    numberless = _numberless_misses(daily / "warehouse.duckdb", daily_landing)
    assert len(numberless) >= 3, "the generated days need number-less misses"
    numbered_late, named_numberless = numberless[:2]
    _append_csv(new_day_calls, {**numbered_late, "from_number": "+12125550178"})
    _append_csv(
        new_day_activities,
        {
            "activity_id": "ACT-TEST-WRONG-NUMBER-NUMBERLESS",
            "activity_type": "outbound_call",
            "logged_at": f"{LAST_DAY}T12:30:00Z",
            "pbx_call_id": named_numberless["call_id"],
            "disposition": "wrong_number",
            "duration_seconds": "15",
        },
    )
    crm_numbers = (_e164(form_caller["from_number"]), _e164(won_caller["from_number"]))
    assert _crm_facts(daily / "warehouse.duckdb", *crm_numbers) == (0, 0)
    # an earlier opportunity that converts an episode delivered again with another amount and
    # stage (its id and creation unchanged): the conversions read by the revenue at risk follow
    _redeliver_converting_opportunity(daily / "warehouse.duckdb", full_landing, new_day)
    for path in new_day:
        shutil.copy2(path, daily_landing / path.relative_to(full_landing))
    started = time.perf_counter()
    second = run_pipeline(daily_landing, daily / "warehouse.duckdb", daily / "ringledger.duckdb")
    incremental_seconds = time.perf_counter() - started
    assert second.exit_code == 0, second.errors
    with duckdb.connect(str(daily / "warehouse.duckdb"), read_only=True) as con:
        assert incremental.last_mode(con) == "incremental"
        # the published file was patched, not written again (orchestration/publish.py)
        assert con.execute(
            "select mode, delta_calls > 0 from raw.publish_state where name = 'published'"
        ).fetchone() == ("delta", True)
        # the renumbered miss has its new caller, the named one is noise
        assert con.execute(
            "select caller_number_e164 from intermediate.int_calls_classified where call_id = ?",
            [renumbered["call_id"]],
        ).fetchone() == ("+12125550177",)
        assert con.execute(
            "select noise_reason from intermediate.int_missed_calls_flagged where call_id = ?",
            [flagged["call_id"]],
        ).fetchone() == ("wrong_number",)
        # the redialer's one episode, older than the horizon, took the new day's miss
        assert con.execute(
            "select count(*), max(e.missed_attempts) from marts.fct_missed_call_episodes e "
            "join intermediate.int_missed_call_episodes_enriched s using (episode_id) "
            "where s.caller_number_e164 = ? and not e.is_noise",
            [REDIALER],
        ).fetchone() == (1, redials + 1)
        # the number-less miss has its number, the named number-less one is a wrong number
        assert con.execute(
            "select caller_number_e164 from intermediate.int_calls_classified where call_id = ?",
            [numbered_late["call_id"]],
        ).fetchone() == ("+12125550178",)
        assert con.execute(
            "select noise_reason from intermediate.int_missed_calls_flagged where call_id = ?",
            [named_numberless["call_id"]],
        ).fetchone() == ("wrong_number",)
        numberless_episodes, watermark = con.execute(
            "select count(*), (select max(load_seq) from raw.load_ledger where file not like ?) "
            "from intermediate.int_missed_call_episodes_enriched where caller_number_e164 is null",
            [f"%{LAST_DAY}%"],
        ).fetchone()
        # the episodes of the touched callers were recomputed, but only those whose row
        # changed were written again (macros/incremental.sql, changed_rows): the others keep
        # the load_seq of the first build
        kept, written = con.execute(
            "select count(*) filter (where load_seq <= watermark), "
            "count(*) filter (where load_seq > watermark) "
            "from intermediate.int_missed_call_episodes_enriched, "
            "(select max(load_seq) as watermark from raw.load_ledger where file not like ?) "
            "where caller_number_e164 in "
            "(select caller_number_e164 from intermediate.int_callers_touched)",
            [f"%{LAST_DAY}%"],
        ).fetchone()
        assert kept > 0 and written > 0, (kept, written)
        # the two CRM-only changes reached the old episodes through the callers' fingerprints,
        # not through their calls
        for number in crm_numbers:
            assert not con.execute(
                "select count(*) from intermediate.int_callers_touched where caller_number_e164 = ?",
                [number],
            ).fetchone()[0]
            assert con.execute(
                "select load_seq > (select max(load_seq) from raw.load_ledger where file not like ?) "
                "from intermediate.int_episode_callers_fingerprinted where caller_number_e164 = ?",
                [f"%{LAST_DAY}%", number],
            ).fetchone() == (True,)
    # only the number-less episodes of recomputed calls were recomputed, by the collapsed
    # episodes and by the rest of the chain (macros/incremental.sql, in_touched_callers and
    # scoped_episodes); unchanged rows are not written again (changed_rows), so the scope is
    # read from the two models' SQL as the day's build compiled it
    in_scope = _day_scope(daily / "warehouse.duckdb", tmp_path / "scope", watermark)
    for model in ("int_missed_call_episodes_collapsed", SELECTED_EPISODES):
        recomputed = in_scope[model]
        assert 0 < recomputed < numberless_episodes - 1, (model, recomputed, numberless_episodes)
    # of the touched callers' episodes, the chain recomputed only those the day's calls can
    # change (scoped_episodes, int_callers_touched.recompute_from_utc), not the older ones
    assert 0 < in_scope["touched_in_scope"] < in_scope["touched_episodes"], in_scope
    # ... and changed them: a rule-3 episode, a converted one
    form_episodes, won_episodes = _crm_facts(daily / "warehouse.duckdb", *crm_numbers)
    assert form_episodes > 0 and won_episodes > 0
    with duckdb.connect(str(daily / "warehouse.duckdb"), read_only=True) as con:
        # the activity naming the moved leg is linked to the new parent's call only
        assert con.execute(
            "select l.call_key = c.call_key from intermediate.int_crm_activity_calls_linked l "
            "join intermediate.int_calls c on c.call_id = ? "
            "where l.activity_id = 'ACT-TEST-MOVED-LEG'",
            [new_parent],
        ).fetchall() == [(True,)]
        # the moved leg's own call is gone, its new parent's call has it
        assert not con.execute(
            "select count(*) from intermediate.int_calls where call_id = ?", [moved_leg]
        ).fetchone()[0]
        assert (
            con.execute(
                "select legs from intermediate.int_calls where call_id = ?", [new_parent]
            ).fetchone()[0]
            >= 2
        )

    full = tmp_path / "full"
    started = time.perf_counter()
    rebuilt = run_pipeline(full_landing, full / "warehouse.duckdb", full / "ringledger.duckdb")
    full_seconds = time.perf_counter() - started
    assert rebuilt.exit_code == 0, rebuilt.errors

    # only the new day's files were read by the second run
    with duckdb.connect(str(daily / "warehouse.duckdb"), read_only=True) as con:
        (loaded_late,) = con.execute(
            "select count(*) from raw.load_ledger where status = 'loaded' and load_seq > "
            "(select max(load_seq) from raw.load_ledger where file not like ?)",
            [f"%{LAST_DAY}%"],
        ).fetchone()
    assert loaded_late == len(new_day)

    daily_marts, full_marts = (
        _marts(daily / "ringledger.duckdb"),
        _marts(full / "ringledger.duckdb"),
    )
    assert set(daily_marts) == set(full_marts)
    assert "fct_missed_call_episodes" in daily_marts
    assert daily_marts["fct_missed_call_episodes"], "no episodes to compare"
    for table in full_marts:
        assert daily_marts[table] == full_marts[table], f"marts.{table} differs"
    daily_models = _intermediate(daily / "warehouse.duckdb")
    full_models = _intermediate(full / "warehouse.duckdb")
    assert set(daily_models) == set(full_models)
    assert daily_models["int_legs_deduplicated"], "no legs to compare"
    # the incremental build recomputed about the new day's calls (one day of nine, plus the
    # repeated hour and the moved leg), not all of them; the full one had no such list
    touched_roots = [row for row in daily_models.pop(TOUCHED) if row[0] == "root"]
    assert 0 < len(touched_roots) < len(daily_models["int_calls"]) / 4
    assert not full_models.pop(TOUCHED)
    # and recomputed the episodes of the callers of those calls, not of every caller (250
    # callers over nine days call back often: most have a call in the last days' exports)
    touched_callers = {row[0] for row in daily_models.pop(TOUCHED_CALLERS)}
    episode_callers = {row[0] for row in _caller_numbers(daily / "warehouse.duckdb")}
    assert 0 < len(touched_callers & episode_callers) < len(episode_callers)
    assert not full_models.pop(TOUCHED_CALLERS)
    # and the links of the activities naming recomputed calls or legs, and of the new ones
    touched_activities = {row[0] for row in daily_models.pop(TOUCHED_ACTIVITIES)}
    assert "ACT-TEST-MOVED-LEG" in touched_activities
    assert len(touched_activities) < len(daily_models["int_crm_activities_deduplicated"])
    assert not full_models.pop(TOUCHED_ACTIVITIES)
    # the episodes the day's chain recomputed, stored for the build's readers; none in full
    assert daily_models.pop(SELECTED_EPISODES)
    assert not full_models.pop(SELECTED_EPISODES)
    for table in full_models:
        assert daily_models[table] == full_models[table], f"intermediate.{table} differs"
    # recorded for docs/benchmarks.md (the time target is measured by the benchmark)
    print(f"incremental run {incremental_seconds:.1f} s, full rebuild {full_seconds:.1f} s")


def test_first_opportunities_reach_the_numberless_episodes(tmp_path):
    """The first opportunities loaded change a global input of the episode chain (`converted`
    is null on every episode while none is loaded): every caller's fingerprint changes, and the
    number-less episodes, which no call of the day touches, are recomputed too
    (macros/incremental.sql, scoped_episodes)."""
    full_landing = tmp_path / "landing_full"
    generate(full_landing, days=DAYS, calls_per_day=120, seed=11, start=START)
    opportunities = sorted((full_landing / "crm").glob("opportunities_*.csv"))
    assert opportunities
    daily_landing = tmp_path / "landing_daily"
    shutil.copytree(full_landing, daily_landing)
    for path in opportunities:
        (daily_landing / path.relative_to(full_landing)).unlink()
    daily = tmp_path / "daily"
    numberless = (
        "select count(*), count(converted) from marts.fct_missed_call_episodes "
        "where caller_key is null"
    )
    first = run_pipeline(daily_landing, daily / "warehouse.duckdb", daily / "ringledger.duckdb")
    assert first.exit_code == 0, first.errors
    with duckdb.connect(str(daily / "ringledger.duckdb"), read_only=True) as con:
        (episodes, converted) = con.execute(numberless).fetchone()
    assert episodes > 0 and converted == 0, "no opportunity loaded: converted is null"
    for path in opportunities:
        shutil.copy2(path, daily_landing / path.relative_to(full_landing))
    second = run_pipeline(daily_landing, daily / "warehouse.duckdb", daily / "ringledger.duckdb")
    assert second.exit_code == 0, second.errors
    with duckdb.connect(str(daily / "warehouse.duckdb"), read_only=True) as con:
        assert incremental.last_mode(con) == "incremental"
        assert not con.execute(
            "select count(*) from intermediate.int_calls_touched where kind <> 'leg'"
        ).fetchone()[0], "the opportunities touch no call"
    with duckdb.connect(str(daily / "ringledger.duckdb"), read_only=True) as con:
        assert con.execute(numberless).fetchone() == (episodes, episodes)
    full = tmp_path / "full"
    rebuilt = run_pipeline(full_landing, full / "warehouse.duckdb", full / "ringledger.duckdb")
    assert rebuilt.exit_code == 0, rebuilt.errors
    daily_marts, full_marts = (
        _marts(daily / "ringledger.duckdb"),
        _marts(full / "ringledger.duckdb"),
    )
    for table in full_marts:
        assert daily_marts[table] == full_marts[table], f"marts.{table} differs"

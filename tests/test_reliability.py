"""Reliability: idempotent runs, re-delivery and corrections, crashes, concurrent readers.

- Running twice on the same landing directory leaves every mart identical (full contents of
  every table of the published file; of `data_quality_results`, the latest run's rows
  without `run_id` and `checked_at`). A re-delivered file changes nothing; a corrected file
  with the same name supersedes the old rows (the ledger keeps both rows) and the marts equal
  a clean run's on the corrected exports.
- Killing `ringledger run` (the whole process group, SIGKILL) during the ingest and during the
  dbt build leaves the published file byte-identical and readable, leaves no process holding
  the warehouse, and the next run publishes the marts a clean run publishes.
- A second process reading the published file in a loop during a run never gets an error or
  a half-written table.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import generate_sample, run_isolated

from orchestration.locking import WarehouseBusy, WarehouseLock
from orchestration.publish import publish_marts, quality_json_path, write_quality_json
from orchestration.runner import EXIT_OK, EXIT_REFUSED, RunOutcome

KEY = "test-key-not-secret"  # the key conftest.run_isolated uses: CLI runs use it too
# Small, but with both file-level faults of the generator: a file re-delivered under another
# name and a file with malformed rows (plus one in CP1252 with CRLF line ends).
SAMPLE = {"days": 7, "calls_per_day": 40, "seed": 1, "inject": ["duplicate-file", "malformed-rows"]}
LATE_DAYS = ("2025-01-11", "2025-01-12")  # telephony days the "earlier" deployment lacks
RINGLEDGER = Path(sys.executable).parent / "ringledger"
RUN_TIMEOUT = 900


# -- snapshots of the published file -----------------------------------------------------

_RUN_START = re.compile(r"\(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)")


def _normal(value):
    """Doubles to 12 significant digits: parallel aggregation may change the last bits."""
    if isinstance(value, float):
        return value if not math.isfinite(value) else float(f"{value:.12g}")
    return value


def snapshot(marts: Path) -> dict[str, list[tuple]]:
    """Every table of the published file, sorted; `data_quality_results`: the latest run,
    without run_id and checked_at (the future_timestamps threshold names the run's start
    time, which is masked)."""
    out: dict[str, list[tuple]] = {}
    with duckdb.connect(str(marts), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        for table in tables:
            if table == "data_quality_results":
                rows = con.execute(
                    "select * exclude (run_id, checked_at) from marts.data_quality_results "
                    "where run_id = (select run_id from marts.data_quality_results "
                    "order by checked_at desc limit 1) order by gate"
                ).fetchall()
                rows = [tuple(_RUN_START.sub("(run start)", v) if isinstance(v, str) else v
                              for v in row) for row in rows]
            else:
                rows = con.execute(f"select * from marts.{table} order by all").fetchall()
            out[table] = [tuple(_normal(v) for v in row) for row in rows]
    return out


def counts(marts: Path) -> dict[str, int]:
    with duckdb.connect(str(marts), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        ]
        return {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in tables}


def ledger(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select file, content_hash, load_id, rows_read, rows_loaded, rows_rejected, status, "
            "reason from raw.load_ledger order by load_seq"
        ).fetchall()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_same_marts(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for table, rows in want.items():
        assert len(got[table]) == len(rows), table
        assert got[table] == rows, table


# -- a deployment -------------------------------------------------------------------------


@dataclass
class Deployment:
    root: Path
    landing: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def marts(self) -> Path:
        return self.root / "ringledger.duckdb"

    def run(self, exit_code: int = EXIT_OK) -> RunOutcome:
        outcome = run_isolated(self.landing, self.warehouse, self.marts)
        assert outcome.exit_code == exit_code, (outcome.errors, outcome.gate_failures,
                                                outcome.refused_files)
        assert outcome.published
        return outcome

    def copy_to(self, root: Path, landing: Path) -> Deployment:
        root.mkdir(parents=True)
        for path in self.root.iterdir():
            if path.is_file() and path.name.startswith(("warehouse.", "ringledger.")):
                shutil.copy2(path, root / path.name)
        return Deployment(root, landing)


def _generate(landing: Path) -> Path:
    generate_sample(landing, **SAMPLE)
    return landing


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """A clean run on the complete sample: the marts every other path must reach."""
    root = tmp_path_factory.mktemp("reference")
    deployment = Deployment(root, _generate(root / "landing"))
    deployment.run()
    return {"deployment": deployment, "snapshot": snapshot(deployment.marts)}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory) -> Deployment:
    """A deployment that published from the sample without its last two telephony days."""
    root = tmp_path_factory.mktemp("earlier")
    landing = _generate(root / "landing")
    for day in LATE_DAYS:
        (landing / "telephony" / f"calls_{day}.csv").unlink()
    deployment = Deployment(root / "deploy", landing)
    deployment.root.mkdir()
    deployment.run()
    return deployment


# -- idempotence --------------------------------------------------------------------------


def test_second_run_leaves_every_mart_identical(reference):
    deployment: Deployment = reference["deployment"]
    first = reference["snapshot"]
    assert first["fct_calls"] and first["data_quality_results"]
    assert {"fct_calls", "fct_missed_call_episodes", "mart_weekly_summary",
            "data_quality_results"} <= set(first)
    ledger_before = ledger(deployment.warehouse)
    # the generator's file faults reached the ledger: a re-delivered copy, rejected rows
    duplicates = [r for r in ledger_before if r[7] and r[7].startswith("duplicate of ")]
    assert [(r[0], r[3:6]) for r in duplicates] == [
        ("telephony/calls_2025-01-07_resent.csv", (0, 0, 0))
    ]
    assert any(r[5] > 0 for r in ledger_before)
    assert all(r[3] == r[4] + r[5] for r in ledger_before)
    deployment.run()
    assert_same_marts(snapshot(deployment.marts), first)
    assert ledger(deployment.warehouse) == ledger_before  # nothing loaded, nothing recorded
    with duckdb.connect(str(deployment.marts), read_only=True) as con:
        runs = con.execute("select count(distinct run_id) from marts.data_quality_results").fetchone()
    assert runs[0] == 2  # every run's gate results are kept


def test_redelivered_files_change_nothing(reference):
    deployment: Deployment = reference["deployment"]
    landing = deployment.landing
    before = ledger(deployment.warehouse)
    telephony = sorted((landing / "telephony").glob("calls_*.csv"))[4]
    contacts = min((landing / "crm").glob("contacts_*.csv"))
    shutil.copyfile(telephony, telephony.with_name("resent_" + telephony.name))
    shutil.copyfile(contacts, contacts.with_name(contacts.stem + "_again.csv"))
    telephony.write_bytes(telephony.read_bytes())  # same bytes again, newer mtime
    broken = landing / "telephony" / "broken.csv.gz"  # and a file that cannot be read
    broken.write_bytes(b"call_id\n")
    outcome = deployment.run(exit_code=EXIT_REFUSED)  # published, the refusal listed
    broken.unlink()
    not_gzip = "not gzip: the name ends in .gz but the content is not gzip"
    assert outcome.refused_files == [("telephony/broken.csv.gz", not_gzip)]
    assert_same_marts(snapshot(deployment.marts), reference["snapshot"])
    after = ledger(deployment.warehouse)
    assert after[: len(before)] == before
    new = after[len(before):]
    assert sorted((r[0], r[3:]) for r in new) == sorted([
        (f"crm/{contacts.stem}_again.csv", (0, 0, 0, "loaded", f"duplicate of crm/{contacts.name}")),
        (f"telephony/resent_{telephony.name}",
         (0, 0, 0, "loaded", f"duplicate of telephony/{telephony.name}")),
        ("telephony/broken.csv.gz", (0, 0, 0, "refused", not_gzip)),
    ])


def _plain(path: Path) -> bool:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\r" not in data and data.endswith(b"\n")


def _unique_legs(landing: Path, file: Path) -> list[dict]:
    """Inbound single-leg calls of `file` that appear in no other telephony file."""
    seen: dict[str, int] = {}
    for path in (landing / "telephony").glob("*.csv"):
        text = path.read_bytes().decode("utf-8", errors="replace")
        for row in csv.DictReader(io.StringIO(text)):
            seen[row.get("call_id") or ""] = seen.get(row.get("call_id") or "", 0) + 1
            parent = row.get("parent_call_id") or ""
            if parent:
                seen[parent] = seen.get(parent, 0) + 10
    rows = list(csv.DictReader(io.StringIO(file.read_text())))
    return [
        r for r in rows
        if seen.get(r["call_id"]) == 1 and not r["parent_call_id"] and r["direction"] == "inbound"
    ]


@pytest.mark.slow
def test_corrected_file_supersedes_and_equals_a_clean_run(reference, tmp_path):
    deployment: Deployment = reference["deployment"]
    landing = deployment.landing
    # a plain UTF-8, LF file (not the generator's CP1252 or malformed one)
    target = next(
        path
        for path in sorted((landing / "telephony").glob("calls_2025-01-1?.csv"))
        if _plain(path)
    )
    rel = f"telephony/{target.name}"
    dropped, changed = _unique_legs(landing, target)[:2]
    other_queue = "support" if changed["queue"] != "support" else "sales"
    rows = list(csv.reader(io.StringIO(target.read_text())))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        if row[0] == dropped["call_id"]:
            continue  # a leg the source system retracted
        if row[0] == changed["call_id"]:
            row[9] = other_queue  # and one it corrected
        writer.writerow(row)
    target.write_text(out.getvalue())
    deployment.run()

    rows = [r for r in ledger(deployment.warehouse) if r[0] == rel]
    assert [r[6] for r in rows] == ["superseded", "loaded"]  # the ledger shows both
    old_load, new_load = rows[0][2], rows[1][2]
    assert rows[1][4] == rows[0][4] - 1
    with duckdb.connect(str(deployment.warehouse), read_only=True) as con:
        loads = con.execute(
            "select distinct _load_id from raw.telephony_legs where _file = ?", [rel]
        ).fetchall()
        assert loads == [(new_load,)] and old_load != new_load
        assert con.execute(
            "select count(*) from raw.telephony_legs where call_id = ?", [dropped["call_id"]]
        ).fetchone()[0] == 0
        assert con.execute(
            "select queue from raw.telephony_legs where call_id = ?", [changed["call_id"]]
        ).fetchall() == [(other_queue,)]
    with duckdb.connect(str(deployment.marts), read_only=True) as con:
        assert con.execute(
            "select count(*) from marts.fct_calls where call_id = ?", [dropped["call_id"]]
        ).fetchone()[0] == 0
        assert con.execute(
            "select queue from marts.fct_calls where call_id = ?", [changed["call_id"]]
        ).fetchall() == [(other_queue,)]
    # the same marts as a clean run on the corrected exports
    clean = Deployment(tmp_path / "clean", tmp_path / "landing")
    shutil.copytree(landing, clean.landing)
    clean.root.mkdir()
    clean.run()
    assert_same_marts(snapshot(deployment.marts), snapshot(clean.marts))
    assert snapshot(deployment.marts) != reference["snapshot"]


# -- the publish step ---------------------------------------------------------------------


def _warehouse_with_marts(path: Path, rows: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists marts")
    con.execute(f"create or replace table marts.fct_calls as select range as call_key from range({rows})")
    return con


def test_publish_removes_the_leftovers_of_a_killed_publish(tmp_path):
    marts = tmp_path / "ringledger.duckdb"
    stale = [tmp_path / ".ringledger.k1ll3d.publishing", tmp_path / ".ringledger.k1ll3d.publishing.wal",
             tmp_path / ".ringledger.quality.json.x7y8z9"]
    for path in stale:
        path.write_bytes(b"half")
    unrelated = tmp_path / ".other.k1ll3d.publishing"
    unrelated.write_bytes(b"not ours")
    with _warehouse_with_marts(tmp_path / "warehouse.duckdb", 5) as con:
        assert publish_marts(con, marts).counts == {"fct_calls": 5}
    write_quality_json(marts, {"passed": True})
    assert not any(p.exists() for p in stale)
    assert unrelated.exists()
    assert json.loads(quality_json_path(marts).read_text()) == {"passed": True}
    assert counts(marts) == {"fct_calls": 5}


def test_failed_publish_leaves_the_published_file_untouched(tmp_path, monkeypatch):
    marts = tmp_path / "ringledger.duckdb"
    with _warehouse_with_marts(tmp_path / "warehouse.duckdb", 3) as con:
        publish_marts(con, marts)
    before = sha256(marts)
    import orchestration.publish as publish_module

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish_module.os, "replace", crash)
    with _warehouse_with_marts(tmp_path / "warehouse.duckdb", 7) as con, pytest.raises(OSError):
        publish_marts(con, marts)
    monkeypatch.undo()
    assert sha256(marts) == before
    assert counts(marts) == {"fct_calls": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ringledger.duckdb", "warehouse.duckdb"]


def test_lock_is_exclusive_and_released_by_death(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, time; from pathlib import Path; from orchestration.locking import "
            f"WarehouseLock\nlock = WarehouseLock(Path({str(warehouse)!r})).__enter__()\n"
            "print('held', flush=True)\ntime.sleep(600)"
        )],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusy, match=f"pid {holder.pid}"):
            WarehouseLock(warehouse).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with WarehouseLock(warehouse):  # a killed holder leaves the file, but not the lock
        pass


# -- crash safety (real processes, SIGKILL to the whole process group) ---------------------


def _cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGLEDGER_")}
    env["RINGLEDGER_HASH_KEY"] = KEY
    env["PYTHONUNBUFFERED"] = "1"
    return env


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _reap_runs():
    """A failing or interrupted test never leaves a run behind (it could wait on a FIFO)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)


def start_run(deployment: Deployment, log: Path) -> subprocess.Popen:
    # `timeout` kills the run even if pytest itself is killed before it can clean up
    guard = ["timeout", "-k", "10", str(RUN_TIMEOUT)] if shutil.which("timeout") else []
    handle = log.open("ab")
    proc = subprocess.Popen(
        [*guard, str(RINGLEDGER), "run", "--landing", str(deployment.landing), "--warehouse",
         str(deployment.warehouse), "--marts", str(deployment.marts)],
        stdout=handle, stderr=handle, env=_cli_env(), cwd=deployment.root,
        start_new_session=True,  # its own process group: dbt children die with it
    )
    _STARTED.append(proc)
    return proc


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_text = (entry / "stat").read_text()
            group = int(stat_text[stat_text.rindex(")") + 2:].split()[2])
            if group != pgid:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            # a killed multi-threaded process shows its leader as a zombie while its other
            # threads still exit (and still hold its files): alive until every thread is gone
            states = [_state((task / "stat").read_text()) for task in (entry / "task").iterdir()]
        except (OSError, ValueError):
            continue
        if any(state not in ("Z", "X") for state in states):
            members.append((int(entry.name), cmdline))
    return members


def _state(stat_text: str) -> str:
    return stat_text[stat_text.rindex(")") + 2:].split()[0]


def lock_holders(path: Path) -> list[int]:
    """Pids with an open file descriptor on `path`."""
    holders = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if any(os.readlink(fd) == str(path) for fd in (entry / "fd").iterdir()):
                    holders.append(int(entry.name))
            except OSError:
                continue
    return holders


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while group_members(proc.pid):
        assert time.monotonic() < deadline, f"still alive: {group_members(proc.pid)}"
        time.sleep(0.1)


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def assert_nothing_holds(deployment: Deployment) -> None:
    lock = WarehouseLock(deployment.warehouse)
    assert lock_holders(lock.path) == [], "a process of the killed run keeps the lock file open"
    with lock:  # our lock: free at once
        pass
    with duckdb.connect(str(deployment.warehouse)) as con:  # DuckDB's own lock: free too
        con.execute("select count(*) from raw.load_ledger").fetchone()


def assert_intact(marts: Path, digest: str, published: dict[str, int]) -> None:
    assert sha256(marts) == digest
    assert counts(marts) == published  # readable, every table whole


def finish_run(deployment: Deployment, log: Path) -> None:
    proc = start_run(deployment, log)
    assert proc.wait(timeout=RUN_TIMEOUT + 30) == EXIT_OK, log.read_text()[-4000:]
    assert not list(deployment.marts.parent.glob(".ringledger.*"))  # no temp files left


def reconciled(warehouse: Path) -> None:
    """After a crash every ledger row still matches the tables: no half-loaded file."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        bad = con.execute(
            """
            select l.file from raw.load_ledger as l
            where l.rows_read <> l.rows_loaded + l.rows_rejected
               or l.rows_rejected <> (select count(*) from raw.rejected_rows as r
                                      where r.load_id = l.load_id)
               or (l.status = 'loaded' and l.entity = 'telephony' and l.rows_loaded <>
                   (select count(*) from raw.telephony_legs as t where t._load_id = l.load_id))
            """
        ).fetchall()
    assert bad == []


@pytest.mark.slow
def test_kill_during_ingest_and_during_dbt_build(reference, earlier, tmp_path):
    landing = _generate(tmp_path / "landing")
    deployment = earlier.copy_to(tmp_path / "deploy", landing)
    log = tmp_path / "runs.log"

    # 1. kill during the ingest. A FIFO among the new files pauses the ingest
    # deterministically: the run blocks reading it once the files before it are committed
    # (which the warehouse's write-ahead log shows). A pre-pass that reads the new files
    # before any is committed (the phone-cache priming) is let through with an empty read.
    fifo = landing / "telephony" / f"calls_{LATE_DAYS[0]}_pipe.csv"
    os.mkfifo(fifo)
    wal = Path(f"{deployment.warehouse}.wal")
    assert not wal.exists()  # the earlier run closed the warehouse cleanly
    published = counts(deployment.marts)
    digest = sha256(deployment.marts)
    proc = start_run(deployment, log)
    writer: list[int] = []

    def ingest_blocked() -> bool:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO until someone reads it
        except OSError:
            return False
        if wal.exists() and wal.stat().st_size > 0:
            writer.append(fd)  # kept open, never written: the reader waits in read()
            return True
        os.close(fd)  # a reader before any commit: it sees an empty file and moves on
        time.sleep(0.05)
        return False

    wait_for(ingest_blocked, proc, "the ingest reached the FIFO")
    time.sleep(0.3)
    assert not any("dbt" in cmd and " build" in cmd for _, cmd in group_members(proc.pid))
    kill_group(proc)
    os.close(writer[0])
    fifo.unlink()
    assert_intact(deployment.marts, digest, published)
    assert_nothing_holds(deployment)
    reconciled(deployment.warehouse)
    files = {r[0] for r in ledger(deployment.warehouse)}
    assert f"telephony/calls_{LATE_DAYS[0]}.csv" in files  # before the FIFO: committed
    assert f"telephony/calls_{LATE_DAYS[1]}.csv" not in files  # after it: never reached
    finish_run(deployment, log)
    assert_same_marts(snapshot(deployment.marts), reference["snapshot"])

    # 2. kill during the dbt build (a `dbt build` child of the run is writing the warehouse)
    published = counts(deployment.marts)
    digest = sha256(deployment.marts)
    proc = start_run(deployment, log)
    wal = Path(f"{deployment.warehouse}.wal")
    seen: dict[str, float] = {}

    def dbt_writing() -> bool:
        if any("dbt" in cmd and " build" in cmd for _, cmd in group_members(proc.pid)):
            seen.setdefault("dbt", time.monotonic())
        if wal.exists() and "dbt" in seen:
            seen.setdefault("wal", time.monotonic())
        return "dbt" in seen and time.monotonic() - seen["dbt"] > 2.0

    wait_for(dbt_writing, proc, "dbt build writing the warehouse")
    assert any("dbt" in cmd and " build" in cmd for _, cmd in group_members(proc.pid))
    kill_group(proc)
    assert_intact(deployment.marts, digest, published)
    assert_nothing_holds(deployment)
    finish_run(deployment, log)
    assert_same_marts(snapshot(deployment.marts), reference["snapshot"])


# -- concurrent readers ---------------------------------------------------------------------

READER = r"""
import json, os, sys, time
import duckdb

path, stop, out, mode = sys.argv[1:5]

def counts(con):
    tables = [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' "
        "order by 1").fetchall()]
    return {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0] for t in tables}

held = duckdb.connect(path, read_only=True) if mode == "held" else None
with open(out, "w") as handle:
    while True:
        stopping = os.path.exists(stop)
        record = {"t": time.time()}
        try:
            if held is not None:
                record["counts"] = counts(held)
            else:
                con = duckdb.connect(path, read_only=True)  # fresh on every iteration
                try:
                    record["counts"] = counts(con)
                finally:
                    con.close()
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        if stopping:
            break
        time.sleep(0.01)
"""


@pytest.mark.slow
def test_readers_never_see_a_lock_error_or_a_half_written_table(reference, earlier, tmp_path):
    landing = _generate(tmp_path / "landing")
    deployment = earlier.copy_to(tmp_path / "deploy", landing)
    old = counts(deployment.marts)
    script = tmp_path / "reader.py"
    script.write_text(READER)
    stop = tmp_path / "stop"
    readers = {
        mode: subprocess.Popen(
            [sys.executable, str(script), str(deployment.marts), str(stop),
             str(tmp_path / f"{mode}.jsonl"), mode],
            start_new_session=True,
        )
        for mode in ("fresh", "held")
    }
    _STARTED.extend(readers.values())  # reaped if the test fails
    time.sleep(1.0)
    log = tmp_path / "run.log"
    proc = start_run(deployment, log)
    assert proc.wait(timeout=RUN_TIMEOUT + 30) == EXIT_OK, log.read_text()[-4000:]
    finished = time.time()
    time.sleep(1.0)
    stop.touch()
    for reader in readers.values():
        assert reader.wait(timeout=60) == 0
    new = counts(deployment.marts)
    assert new["fct_calls"] > old["fct_calls"]
    assert new == {t: len(rows) for t, rows in reference["snapshot"].items()} | {
        "data_quality_results": new["data_quality_results"]
    }

    fresh = [json.loads(x) for x in (tmp_path / "fresh.jsonl").read_text().splitlines()]
    errors = [r["error"] for r in fresh if "error" in r]
    assert errors == []
    assert len(fresh) > 20
    for record in fresh:  # each observation is one whole file: the old one or the new one
        assert record["counts"] in (old, new), record
    assert fresh[0]["counts"] == old
    assert fresh[-1]["counts"] == new
    after = [r for r in fresh if r["t"] > finished + 0.2]
    assert after and all(r["counts"] == new for r in after)

    # a BI tool holding the file open keeps its snapshot, and did not block the publish
    held = [json.loads(x) for x in (tmp_path / "held.jsonl").read_text().splitlines()]
    assert [r for r in held if "error" in r] == []
    assert held and all(r["counts"] == old for r in held)

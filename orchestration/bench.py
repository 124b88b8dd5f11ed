"""The benchmark harness behind `ringledger bench` (issue 7).

`run_benchmark(legs)` generates about `legs` call legs (with proportional CRM data) once into a
cache directory, runs the whole pipeline in-process on a fresh warehouse, and measures:

- wall time of the run and of each stage (from the Dagster step events: ingest, dbt build of
  the models and of the marts, gates, publish, report; `dbt_parse` is the wait for the run's
  dbt parse between the ingest and the rest (the parse overlaps the ingest), `overhead` the
  rest: Dagster start-up, definitions, event log);
- peak resident memory of the whole process tree (this process and every descendant, such
  as dbt), sampled from /proc every 0.2 s in a thread;
- legs per second, and the ratio of the run to a bare DuckDB scan of the same landing files
  (`select count(*) from read_csv([...], all_varchar=true, union_by_name=true)`): the floor.

One JSON line per run is appended to `benchmarks/results.jsonl` with the machine it ran on.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from orchestration import project

BENCH_DIR = project.REPO_ROOT / "benchmarks"
RESULTS_FILE = BENCH_DIR / "results.jsonl"
CACHE_DIR = BENCH_DIR / "cache"
START = date(2025, 1, 6)
SEED = 7
# legs per (day x calls_per_day) of the generator: ~1.9 legs a call (transfers, callbacks,
# the previous day's last hour repeated in each daily file); measured, refined by the cache
LEGS_PER_CALL = 1.92
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# Dagster step keys -> benchmark stages (report order)
STAGES: dict[str, tuple[str, ...]] = {
    "dbt_parse": ("dbt_parse",),
    "ingest": ("ingest_landing_files",),
    "dbt_models": ("ringledger_dbt_models",),
    "gates": ("data_quality_gates",),
    "dbt_marts": ("ringledger_dbt_marts",),
    "publish": ("published_marts",),
    "report": ("weekly_report",),
}


def plan(legs: int) -> tuple[int, int]:
    """(days, calls_per_day) of a generation of about `legs` legs: ~10,000 legs a day up to
    a year of data, then more calls a day."""
    days = min(365, max(7, round(legs / 10_000)))
    calls_per_day = max(1, round(legs / (days * LEGS_PER_CALL)))
    return days, calls_per_day


# -- the landing cache ----------------------------------------------------------------------


def ensure_landing(
    legs: int, cache: Path | None = None, progress: bool = False
) -> tuple[Path, dict]:
    """The cached landing directory of `legs` legs (generated on first use) and its summary."""
    from orchestration.generator import generate

    cache = Path(cache) if cache else CACHE_DIR / str(legs)
    landing = cache / "landing"
    marker = cache / "generated.json"
    days, calls_per_day = plan(legs)
    wanted = {"days": days, "calls_per_day": calls_per_day, "seed": SEED, "start": str(START)}
    if marker.exists():
        summary = json.loads(marker.read_text())
        if summary.get("plan") == wanted and landing.is_dir():
            return landing, summary
    if landing.exists():
        shutil.rmtree(landing)
    landing.mkdir(parents=True)
    started = time.perf_counter()
    summary = generate(
        landing, days=days, calls_per_day=calls_per_day, seed=SEED, start=START, progress=progress
    )
    summary["generate_seconds"] = round(time.perf_counter() - started, 1)
    summary["plan"] = wanted
    marker.write_text(json.dumps(summary, indent=1, default=str))
    return landing, summary


def landing_files(landing: Path) -> list[Path]:
    return sorted(
        p for sub in ("telephony", "crm", "marketing") for p in (landing / sub).rglob("*.csv*")
    )


def bare_scan(landing: Path) -> tuple[float, int]:
    """(seconds, rows) of the floor: one DuckDB count over every landing file, as text."""
    files = [str(p) for p in landing_files(landing)]
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    try:
        started = time.perf_counter()
        (rows,) = con.execute(
            "select count(*) from read_csv(?, all_varchar=true, union_by_name=true)", [files]
        ).fetchone()
        return time.perf_counter() - started, int(rows)
    finally:
        con.close()


def entity_scan(landing: Path) -> tuple[float, int]:
    """(seconds, rows) of a tighter floor: one count per export kind (files of one layout),
    which spares DuckDB reconciling the layouts of every file (`union_by_name`)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for path in landing_files(landing):
        groups.setdefault((path.parent.name, path.name.split("_")[0]), []).append(str(path))
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    try:
        started = time.perf_counter()
        rows = 0
        for files in groups.values():
            (count,) = con.execute(
                "select count(*) from read_csv(?, all_varchar=true)", [files]
            ).fetchone()
            rows += int(count)
        return time.perf_counter() - started, rows
    finally:
        con.close()


# -- where the machine's CPU time went during the run ---------------------------------------

# /proc/stat's aggregate `cpu` line: clock ticks in these states (guest time is in user already)
_CPU_STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times(stat_text: str | None = None) -> dict[str, int] | None:
    """Clock ticks per state of the aggregate `cpu` line of /proc/stat, None where there is
    none (not Linux)."""
    if stat_text is None:
        try:
            stat_text = Path("/proc/stat").read_text()
        except OSError:
            return None
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(value) for value in fields[1 : 1 + len(_CPU_STATES)]]
            ticks += [0] * (len(_CPU_STATES) - len(ticks))
            return dict(zip(_CPU_STATES, ticks, strict=True))
    return None


def cpu_shares(before: dict[str, int] | None, after: dict[str, int] | None) -> dict | None:
    """Shares of the machine's CPU time between two `cpu_times` readings: busy (user, system,
    interrupts), iowait (idle with disk reads or writes pending) and steal (what the virtual
    machine's host ran elsewhere). The same run spreads by ±20% on the Intel machine; these
    say whether the disk or the host had a part in it (docs/benchmarks.md)."""
    if before is None or after is None:
        return None
    delta = {state: after[state] - before[state] for state in _CPU_STATES}
    total = sum(delta.values())
    if total <= 0:
        return None
    busy = total - delta["idle"] - delta["iowait"] - delta["steal"]
    return {
        "busy": round(busy / total, 3),
        "iowait": round(delta["iowait"] / total, 3),
        "steal": round(delta["steal"] / total, 3),
    }


# -- memory of the process tree -------------------------------------------------------------


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
            with open(f"/proc/{pid}/statm", "rb") as handle:
                resident = int(handle.read().split()[1]) * PAGE_SIZE
        except (OSError, ValueError, IndexError):
            continue
        # the command name may hold spaces and parentheses: ppid follows the last ')'
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = resident
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total


class TreeMemory:
    """Peak summed RSS of a process tree, sampled every `interval` seconds in a thread."""

    def __init__(self, root: int | None = None, interval: float = 0.2):
        self.root = root or os.getpid()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-rss", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(self.root))
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemory:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_rss(self.root))


# -- machine --------------------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration):
        mem_kib = 0
    from importlib.metadata import version

    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kib / 1024 / 1024, 1),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "dbt_core": version("dbt-core"),
        "dagster": version("dagster"),
    }


# -- the benchmark --------------------------------------------------------------------------


@dataclass
class BenchResult:
    record: dict
    workdir: Path | None


@dataclass
class _Measured:
    """One `run_pipeline` call as the benchmark measured it."""

    outcome: object  # runner.RunOutcome
    wall: float
    peak_rss: int
    cpu: dict | None
    stages: dict[str, float]


def _measured_run(landing: Path, warehouse: Path, marts: Path) -> _Measured:
    from orchestration.runner import run_pipeline

    with TreeMemory() as memory:
        cpu_before = cpu_times()
        started = time.perf_counter()
        outcome = run_pipeline(landing, warehouse, marts)
        wall = time.perf_counter() - started
        cpu_after = cpu_times()
    stages = {
        stage: round(sum(outcome.step_seconds.get(step, 0.0) for step in steps), 2)
        for stage, steps in STAGES.items()
    }
    stages["overhead"] = round(max(0.0, wall - sum(stages.values())), 2)
    return _Measured(outcome, wall, memory.peak, cpu_shares(cpu_before, cpu_after), stages)


def _run_fields(run: _Measured) -> dict:
    """The fields of a record that describe one measured run."""
    return {
        "exit_code": run.outcome.exit_code,
        "errors": run.outcome.errors[:3],
        "wall_seconds": round(run.wall, 2),
        "stages": run.stages,
        "steps": {k: round(v, 2) for k, v in run.outcome.step_seconds.items()},
        "peak_rss_mb": round(run.peak_rss / 1e6, 1),
        "cpu_shares": run.cpu,
        # whether the dbt builds were forked from the run's dbt server (docs/operations.md)
        "dbt_fork_server": run.outcome.dbt_fork_server,
        # "full" on a new warehouse: no dbt parse state saved for it (docs/operations.md)
        "dbt_parse": run.outcome.dbt_parse,
    }


def _append(record: dict, results_file: Path | None) -> None:
    if results_file is not None:
        results_file.parent.mkdir(parents=True, exist_ok=True)
        with results_file.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def run_benchmark(
    legs: int,
    cache: Path | None = None,
    keep: bool = False,
    results_file: Path | None = RESULTS_FILE,
    progress: bool = False,
) -> BenchResult:
    """Generate (once), run the pipeline on a fresh warehouse, measure, append a JSON line."""
    landing, summary = ensure_landing(legs, cache, progress=progress)
    # other work on the machine skews every figure: record the load around the run
    load_before = list(os.getloadavg())
    scan_seconds, scan_rows = bare_scan(landing)
    entity_seconds, _ = entity_scan(landing)
    workdir = Path(tempfile.mkdtemp(prefix="ringledger-bench-"))
    warehouse = workdir / "warehouse.duckdb"
    try:
        run = _measured_run(landing, warehouse, workdir / "ringledger.duckdb")
        raw_rows = _raw_counts(warehouse)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    generated_legs = int(summary["legs"])
    wall = run.wall
    record = {
        **_generation_fields("full", legs, summary),
        "landing_rows": scan_rows,
        "landing_mb": round(sum(p.stat().st_size for p in landing_files(landing)) / 1e6, 1),
        **_run_fields(run),
        "legs_per_second": round(generated_legs / wall, 1) if wall else None,
        "bare_scan_seconds": round(scan_seconds, 3),
        "ratio_to_bare_scan": round(wall / scan_seconds, 1) if scan_seconds else None,
        "entity_scan_seconds": round(entity_seconds, 3),
        "ratio_to_entity_scan": round(wall / entity_seconds, 1) if entity_seconds else None,
        "raw_telephony_legs": raw_rows.get("telephony_legs"),
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "git_commit": _git_commit(),
        "machine": machine(),
    }
    _append(record, results_file)
    return BenchResult(record, workdir if keep else None)


# -- the incremental day ----------------------------------------------------------------------


def last_day_files(landing: Path, summary: dict) -> list[Path]:
    """The generation's files of its last day: the generator names each daily telephony
    export and the CRM exports written on a day after that day (`..._<YYYY-MM-DD>.csv`)."""
    start = date.fromisoformat(summary["plan"]["start"])
    last = (start + timedelta(days=int(summary["plan"]["days"]) - 1)).isoformat()
    return [path for path in landing_files(landing) if last in path.name]


def _link(files: list[Path], source: Path, target: Path) -> None:
    """Hard links of `files` (under `source`) at the same places under `target` (copies
    where the file system refuses links): the cache's files are not copied or touched."""
    for path in files:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)


def run_day_benchmark(
    legs: int,
    cache: Path | None = None,
    keep: bool = False,
    results_file: Path | None = RESULTS_FILE,
    progress: bool = False,
) -> BenchResult:
    """The incremental daily load (issue 7: a new day in at most 10% of a full build): a
    full run on every file of the generation but its last day's, then that day's files added
    to the landing directory and the pipeline run again on the same warehouse. Both are
    timed; the JSON line describes the day's run, with the full run's figures and
    `day_share` (the day's wall time over the full run's). Between them, untimed, the page
    cache's unwritten data is written out (`os.sync()`, `sync_seconds_before_day`): a real
    day's run comes hours after the previous one."""
    landing, summary = ensure_landing(legs, cache, progress=progress)
    day_files = last_day_files(landing, summary)
    if not day_files:
        raise ValueError(f"no file of the generation's last day in {landing}")
    before = [path for path in landing_files(landing) if path not in set(day_files)]
    load_before = list(os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="ringledger-bench-day-"))
    staged = workdir / "landing"
    warehouse = workdir / "warehouse.duckdb"
    marts = workdir / "ringledger.duckdb"
    try:
        _link(before, landing, staged)
        full = _measured_run(staged, warehouse, marts)
        files_before = _loaded_files(warehouse)
        day = None
        sync_seconds = None
        if full.outcome.exit_code in (0, 4):
            # what the full run left in the page cache is written out before the day, as it
            # is by the time a real day's export arrives: the day does not pay for it
            synced = time.perf_counter()
            os.sync()
            sync_seconds = round(time.perf_counter() - synced, 2)
            _link(day_files, landing, staged)
            day = _measured_run(staged, warehouse, marts)
        files_after = _loaded_files(warehouse)
        publish_mode = _publish_mode(warehouse)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    fields = _run_fields(day or full)
    record = {
        **_generation_fields("day", legs, summary),
        "day_files": len(day_files),
        **fields,
        "day_share": round(day.wall / full.wall, 3) if day and full.wall else None,
        # what the day's run did: the files its ingest loaded, how it published
        "day_files_loaded": files_after - files_before if day else 0,
        "day_publish_mode": publish_mode if day else None,
        # untimed: os.sync() of what the full run left unwritten, before the day's run
        "sync_seconds_before_day": sync_seconds,
        "full_exit_code": full.outcome.exit_code,
        "full_wall_seconds": round(full.wall, 2),
        "full_stages": full.stages,
        "full_peak_rss_mb": round(full.peak_rss / 1e6, 1),
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
        "git_commit": _git_commit(),
        "machine": machine(),
    }
    if day is None:
        record["exit_code"] = full.outcome.exit_code
    _append(record, results_file)
    return BenchResult(record, workdir if keep else None)


def _generation_fields(mode: str, legs: int, summary: dict) -> dict:
    """The fields of a record that describe the benchmark and its generated data."""
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "legs_requested": legs,
        "legs": int(summary["legs"]),
        "crm_rows": sum(
            int(summary[k]) for k in ("contacts", "opportunities", "activities", "forms")
        ),
        "files": int(summary["files"]),
        "days": summary["plan"]["days"],
        "calls_per_day": summary["plan"]["calls_per_day"],
    }


def _loaded_files(warehouse: Path) -> int:
    """Files the warehouse's ledger holds a load of."""
    return _scalar(warehouse, "select count(distinct file) from raw.load_ledger") or 0


def _publish_mode(warehouse: Path) -> str | None:
    """How the warehouse last published its marts: 'full' or 'delta' (publish.py)."""
    return _scalar(warehouse, "select mode from raw.publish_state where name = 'published'")


def _scalar(warehouse: Path, sql: str):
    if not warehouse.exists():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            row = con.execute(sql).fetchone()
        return row[0] if row else None
    except duckdb.Error:
        return None


def _raw_counts(warehouse: Path) -> dict[str, int]:
    legs = _scalar(warehouse, "select count(*) from raw.telephony_legs")
    return {} if legs is None else {"telephony_legs": int(legs)}


def _git_commit() -> str | None:
    head = project.REPO_ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (project.REPO_ROOT / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return None


def format_table(record: dict):
    """A rich table of one benchmark record."""
    from rich.table import Table

    wall = record["wall_seconds"]
    day = record.get("mode") == "day"
    what = (
        f"the last day's {record['day_files']} files added to a warehouse holding the other "
        f"{record['days'] - 1} days"
        if day
        else f"{record['files']} files"
    )
    table = Table(
        title=(
            f"ringledger bench: {record['legs']:,} legs, {record['crm_rows']:,} CRM rows, "
            f"{what}, exit {record['exit_code']}"
        )
    )
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    for stage, seconds in record["stages"].items():
        share = f"{seconds / wall * 100:.0f}%" if wall else "-"
        table.add_row(stage, f"{seconds:.1f}", share)
    table.add_section()
    table.add_row("wall", f"{wall:.1f}", "100%")
    table.add_row("peak RSS (tree)", f"{record['peak_rss_mb']:,.0f} MB", "")
    if day:
        share = record["day_share"]
        table.add_row(
            "full build of the other days",
            f"{record['full_wall_seconds']:.1f}",
            f"day {share * 100:.1f}%" if share is not None else "-",
        )
        table.add_row("day's publish", str(record["day_publish_mode"]), "")
        return table
    table.add_row("legs / second", f"{record['legs_per_second']:,.0f}", "")
    table.add_row(
        "bare DuckDB scan",
        f"{record['bare_scan_seconds']:.2f}",
        f"x{record['ratio_to_bare_scan']}",
    )
    table.add_row(
        "per-layout DuckDB scans",
        f"{record['entity_scan_seconds']:.2f}",
        f"x{record['ratio_to_entity_scan']}",
    )
    return table


if __name__ == "__main__":  # pragma: no cover
    result = run_benchmark(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, progress=True)
    print(json.dumps(result.record, indent=1))

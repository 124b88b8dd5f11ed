"""Run the whole pipeline in-process through Dagster (used by the CLI and the tests)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration import project
from orchestration.config import ConfigError, load_config
from orchestration.dbt_zygote import PARTIAL_PARSE_EVENTS
from orchestration.locking import WarehouseLock

log = logging.getLogger(__name__)

# Exit codes of `ringledger run` (inputs-and-outputs.md, Commands).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_GATE = 3
EXIT_REFUSED = 4
EXIT_BUSY = 5
# "0" starts each dbt build as a new process instead of forking it from the run's dbt server
FORK_SERVER_ENV = "RINGLEDGER_DBT_FORK_SERVER"


@dataclass
class GateFailure:
    gate: str
    measured: str
    threshold: str
    detail: str

    def line(self) -> str:
        return (
            f"GATE {self.gate} failed: measured {self.measured}, threshold {self.threshold}: "
            f"{self.detail}"
        )


@dataclass
class RunOutcome:
    exit_code: int
    published: bool = False
    refused_files: list[tuple[str, str]] = field(default_factory=list)
    gate_failures: list[GateFailure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    marts_path: Path | None = None
    warehouse_path: Path | None = None
    # wall seconds per Dagster step (and `dbt_parse`: getting the manifest after the ingest)
    step_seconds: dict[str, float] = field(default_factory=dict)
    # whether the run's dbt builds were forked from its dbt server (orchestration/dbt_zygote.py)
    dbt_fork_server: bool = False
    # "full" or "partial": whether the run's dbt parse reused the warehouse's saved parse state
    dbt_parse: str = ""


@contextmanager
def stdout_to_stderr():
    """Send everything written to standard output (dbt's log lines, child processes) to
    standard error while the pipeline runs: standard output carries only the summary table."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


# dbt's partial-parse state (target/partial_parse.msgpack) is keyed on the profile, which
# holds the warehouse path: kept per warehouse in its state directory, so that a run after a
# parse for another warehouse (the test suite, `dagster dev`, a benchmark) re-parses only what
# changed instead of the whole project
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def ensure_manifest(force: bool = False, vars_arg: list[str] | None = None) -> Path:
    """dagster-dbt needs target/manifest.json before the definitions load.

    `vars_arg` (`--vars JSON`) should be the one the run's dbt builds pass: dbt keeps its
    partial-parse state only for the same vars, so the builds then skip a full re-parse.

    The parse runs in this process (dbt's own API): a `dbt parse` child spent about 2 s of its
    2.5-5 s importing dbt again, which this process has already imported (dagster-dbt). Nothing
    is skipped: dbt's partial parsing re-reads every project file and re-parses what changed
    (and everything when the vars, the profile or an env var it reads changed)."""
    manifest = project.dbt_project.manifest_path
    if force or not manifest.exists():
        parse_manifest(vars_arg or [])
    return manifest


def _copy_atomically(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, destination)


def saved_parse_state(warehouse: Path) -> Path:
    """Where dbt's partial-parse state for `warehouse` is kept between runs."""
    return project.state_dir(warehouse) / PARTIAL_PARSE_FILE


def parse_manifest(vars_arg: list[str], warehouse: Path | None = None) -> str:
    """Parse the project into target/manifest.json; "partial" when dbt reused its saved
    parse state, "full" when it parsed every file (docs/operations.md). With `warehouse` (the
    profile's path for this parse), the state saved for it is used and saved again."""
    target_state = project.dbt_project.manifest_path.parent / PARTIAL_PARSE_FILE
    stored = None if warehouse is None else saved_parse_state(warehouse)
    if stored is not None and stored.exists():
        _copy_atomically(stored, target_state)
    kind = _dbt_parse_in_process(vars_arg)
    if stored is not None and target_state.exists():
        _copy_atomically(target_state, stored)
    return kind


def _dbt_parse_in_process(vars_arg: list[str]) -> str:
    from dbt.cli.main import dbtRunner

    errors: list[str] = []
    partial: list[str] = []

    def collect(event) -> None:
        if event.info.level == "error":
            errors.append(event.info.msg)
        if event.info.name in PARTIAL_PARSE_EVENTS:
            partial.append(event.info.name)

    saved = dict(os.environ)
    os.environ.setdefault("RINGLEDGER_WAREHOUSE", str(project.warehouse_path()))
    os.environ.pop("RINGLEDGER_SEED_DIR", None)
    try:
        result = dbtRunner(callbacks=[collect]).invoke(
            [
                "parse",
                "--project-dir",
                str(project.REPO_ROOT),
                "--profiles-dir",
                str(project.REPO_ROOT),
                "--quiet",
                *vars_arg,
            ]
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if not result.success:
        detail = "\n".join(errors)
        if result.exception is not None and str(result.exception) not in detail:
            detail = f"{detail}\n{result.exception}"
        raise RuntimeError(f"dbt parse failed:\n{detail.strip()}")
    return "partial" if partial else "full"


def _read_only(warehouse_path: Path, attempts: int = 20) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only, waiting briefly for a finishing child (dbt) to let go."""
    for attempt in range(attempts):
        try:
            return duckdb.connect(str(warehouse_path), read_only=True)
        except duckdb.IOException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _refused_files(warehouse_path: Path, since_load_seq: int) -> list[tuple[str, str]]:
    if not warehouse_path.exists():
        return []
    with _read_only(warehouse_path) as con:
        try:
            rows = con.execute(
                "select file, reason from raw.load_ledger "
                "where status = 'refused' and load_seq > ? order by file",
                [since_load_seq],
            ).fetchall()
        except duckdb.CatalogException:
            return []
    return [(str(f), str(r)) for f, r in rows]


def _gate_failures(warehouse_path: Path, run_id: str) -> list[GateFailure]:
    if not warehouse_path.exists():
        return []
    try:
        with _read_only(warehouse_path) as con:
            rows = con.execute(
                "select gate, measured_value, threshold, detail from marts.data_quality_results "
                "where run_id = ? and not passed order by gate",
                [run_id],
            ).fetchall()
    except duckdb.Error:
        return []
    return [
        GateFailure(
            gate=gate,
            measured="none" if measured is None else f"{measured:g}",
            threshold=str(threshold),
            detail=str(detail),
        )
        for gate, measured, threshold, detail in rows
    ]


def _max_load_seq(warehouse_path: Path) -> int:
    if not warehouse_path.exists():
        return 0
    try:
        with _read_only(warehouse_path) as con:
            value = con.execute("select coalesce(max(load_seq), 0) from raw.load_ledger").fetchone()
        return int(value[0])
    except duckdb.Error:
        return 0


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Wall seconds of each step of a run, from its STEP_START and STEP_SUCCESS/FAILURE events."""
    starts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and (
            event.step_key in starts
        ):
            seconds[event.step_key] = entry.timestamp - starts[event.step_key]
    return seconds


def run_pipeline(
    landing: Path | None = None,
    warehouse: Path | None = None,
    marts: Path | None = None,
    config_dir: Path | None = None,
    log_level: str = "WARNING",
    engine: str | None = None,
) -> RunOutcome:
    """Materialize every asset once; map the result to the spec's exit codes. `engine`
    (duckdb or spark; default $RINGLEDGER_ENGINE, else duckdb) runs the dbt models."""
    from orchestration.locking import WarehouseBusy
    from orchestration.spark import ENGINES, spark_unavailable_reason

    landing = (landing or project.landing_dir()).resolve()
    warehouse = (warehouse or project.warehouse_path()).resolve()
    if marts is None:
        explicit = os.environ.get("RINGLEDGER_MARTS")
        marts = Path(explicit) if explicit else warehouse.parent / "ringledger.duckdb"
    marts = marts.resolve()
    outcome = RunOutcome(exit_code=EXIT_OK, marts_path=marts, warehouse_path=warehouse)
    engine = (engine or os.environ.get("RINGLEDGER_ENGINE", "") or "duckdb").lower()
    if engine not in ENGINES:
        outcome.exit_code = EXIT_USAGE
        outcome.errors.append(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
        return outcome
    if engine == "spark" and (reason := spark_unavailable_reason()):
        outcome.exit_code = EXIT_USAGE
        outcome.errors.append(reason)
        return outcome
    try:
        load_config(config_dir)
    except ConfigError as error:
        outcome.exit_code = EXIT_USAGE
        outcome.errors.append(str(error))
        return outcome
    try:
        with WarehouseLock(warehouse), stdout_to_stderr():
            return _run_locked(landing, warehouse, marts, config_dir, log_level, outcome, engine)
    except WarehouseBusy as busy:
        outcome.exit_code = EXIT_BUSY
        outcome.errors.append(str(busy))
        return outcome
    except duckdb.IOException as error:
        outcome.exit_code = EXIT_BUSY if "lock" in str(error).lower() else EXIT_ERROR
        outcome.errors.append(str(error))
        return outcome
    except Exception as error:  # noqa: BLE001 - exit code 1 with the error, never a bare traceback
        outcome.exit_code = EXIT_ERROR
        outcome.errors.append(f"{type(error).__name__}: {error}")
        return outcome


def _run_locked(
    landing, warehouse, marts, config_dir, log_level, outcome: RunOutcome, engine: str = "duckdb"
) -> RunOutcome:
    os.environ["RINGLEDGER_WAREHOUSE"] = str(warehouse)
    os.environ["RINGLEDGER_ENGINE"] = engine
    # the builds' --vars: the parse (the fork server's warm-up, or this process's) takes the same
    vars_json = json.dumps(load_config(config_dir).dbt_vars())
    warm = {"vars": vars_json, "state": str(saved_parse_state(Path(warehouse)))}
    with _dbt_fork_server(warm) as zygote:
        return _run_with_dbt(
            landing, warehouse, marts, config_dir, log_level, outcome, engine, zygote, vars_json
        )


@contextmanager
def _dbt_fork_server(warm: dict | None = None):
    """The run's dbt fork server (orchestration/dbt_zygote.py), started first so that its
    imports and its warm-up (`warm`: the run's vars and the warehouse's saved parse state; the
    run's parse) overlap the ingest: yields the `DbtZygote`, None when
    RINGLEDGER_DBT_FORK_SERVER=0 or not on Linux (each build then starts dbt afresh, as
    `dagster dev` does, and the run parses in this process)."""
    if os.environ.get(FORK_SERVER_ENV, "1") == "0" or not sys.platform.startswith("linux"):
        yield None  # fork() is safe to rely on here on Linux only (macOS: system libraries)
        return
    from orchestration.dbt_zygote import DbtZygote
    from orchestration.resources import dbt_executable

    zygote = DbtZygote(dbt_executable(), warm=warm)
    if not zygote.usable:
        zygote.close()
        yield None
        return
    added = zygote.environment()
    os.environ.update(added)  # dagster-dbt runs dbt with this process's environment
    try:
        yield zygote
    finally:
        for name in added:
            os.environ.pop(name, None)
        zygote.close()


def _install_warm_parse(zygote, warehouse: Path) -> str | None:
    """The fork server's warm-up parse as the run's: its manifest.json and parse state copied
    into target/ (and the state saved for the warehouse, as `parse_manifest` does). Returns
    its kind ("full"/"partial"), None when there is none to take (no server, warm-up failed
    or discarded): the run then parses in this process.

    Same parse as `parse_manifest`'s: the run's vars and profile (RINGLEDGER_WAREHOUSE), a
    copy of the warehouse's saved state, the project as it is now; it started with the run,
    before the ingest. Only dbt's static parser is off in it (its native threads do not
    survive a fork), which yields the same manifest (compared: every node, source, macro,
    exposure and unit test equal but for `created_at`)."""
    from orchestration.dbt_zygote import PARSE_KIND, WARM_UP_TIMEOUT_SECONDS

    if zygote is None:
        return None
    outcome = zygote.wait_for_warm_up(timeout=WARM_UP_TIMEOUT_SECONDS)
    if outcome != "ok":
        if outcome is not None:
            log.warning("dbt fork server's warm-up: %s; parsing in this process", outcome)
        return None
    warm = zygote.warm_target
    files = [warm / "manifest.json", warm / PARTIAL_PARSE_FILE, warm / PARSE_KIND]
    if not all(path.is_file() for path in files):
        return None
    target = project.dbt_project.manifest_path.parent
    _copy_atomically(warm / PARTIAL_PARSE_FILE, target / PARTIAL_PARSE_FILE)
    _copy_atomically(warm / "manifest.json", project.dbt_project.manifest_path)
    _copy_atomically(warm / PARTIAL_PARSE_FILE, saved_parse_state(warehouse))
    return (warm / PARSE_KIND).read_text().strip()


def _execute(instance, definitions, job_name: str, resources: dict, log_level: str):
    return definitions.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        raise_on_error=False,
        resources=resources,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


def _run_with_dbt(
    landing,
    warehouse,
    marts,
    config_dir,
    log_level,
    outcome: RunOutcome,
    engine: str,
    zygote,
    vars_json: str,
) -> RunOutcome:
    """Two Dagster runs of the everything job's steps, in its order: the ingest (whose asset
    needs no manifest) while the fork server parses the project, then the rest once the
    parse is installed (dagster-dbt's assets are defined from target/manifest.json).
    docs/operations.md (the fork server's warm-up)."""
    outcome.dbt_fork_server = zygote is not None
    from dagster import DagsterInstance

    from orchestration.jobs import ingest_only_definitions
    from orchestration.resources import WarehouseResource, dbt_resource

    before = _max_load_seq(warehouse)
    warehouse_resource = WarehouseResource(
        landing_dir=str(landing),
        warehouse=str(warehouse),
        marts=str(marts),
        config_dir=str(config_dir.resolve()) if config_dir else "",
        engine=engine,
    )
    with DagsterInstance.ephemeral() as instance:
        first = _execute(
            instance,
            ingest_only_definitions(),
            "ringledger_ingest",
            {"warehouse": warehouse_resource},
            log_level,
        )
        results = [first]
        outcome.step_seconds.update(_step_seconds(instance, first.run_id))
        if first.success:
            # the manifest must match the project as it is now (models may have been edited)
            # with the builds' --vars, so that they reuse this parse (dbt's partial parsing)
            started = time.perf_counter()
            kind = _install_warm_parse(zygote, Path(warehouse))
            outcome.dbt_parse = kind or parse_manifest(["--vars", vars_json], warehouse)
            outcome.step_seconds["dbt_parse"] = time.perf_counter() - started
            from orchestration.definitions import defs
            from orchestration.jobs import after_ingest_definitions

            rest = _execute(
                instance,
                after_ingest_definitions(defs),
                "ringledger_after_ingest",
                {
                    "dbt": dbt_resource(zygote.executable if zygote is not None else None),
                    "warehouse": warehouse_resource,
                },
                log_level,
            )
            results.append(rest)
            outcome.step_seconds.update(_step_seconds(instance, rest.run_id))
        events = [event for result in results for event in result.all_events]
        failed_steps = [event for event in events if event.event_type_value == "STEP_FAILURE"]
        for event in failed_steps:
            error = event.step_failure_data.error if event.step_failure_data else None
            message = error.message.strip() if error else "step failed"
            if "Could not set lock on file" in message or "Conflicting lock" in message:
                outcome.exit_code = EXIT_BUSY
            outcome.errors.append(f"{event.step_key}: {message}")
        published = any(
            event.event_type_value == "ASSET_MATERIALIZATION"
            and event.asset_key is not None
            and event.asset_key.path == ["published_marts"]
            for event in events
        )
        success = all(result.success for result in results)
        last_run_id = results[-1].run_id
    outcome.published = published
    outcome.refused_files = _refused_files(warehouse, before)
    outcome.gate_failures = _gate_failures(warehouse, last_run_id)
    if outcome.exit_code == EXIT_BUSY:
        return outcome
    gate_steps_only = all("data_quality_gates" in e.step_key for e in failed_steps)
    if outcome.gate_failures and gate_steps_only:
        outcome.exit_code = EXIT_GATE
        outcome.errors = []
    elif failed_steps or not success:
        outcome.exit_code = EXIT_ERROR
    elif not published:
        # every step "succeeded" but publication never ran (steps skipped): never report 0
        outcome.exit_code = EXIT_ERROR
        outcome.errors.append("the marts were not published (downstream steps were skipped)")
    elif outcome.refused_files:
        outcome.exit_code = EXIT_REFUSED
    else:
        outcome.exit_code = EXIT_OK
    return outcome

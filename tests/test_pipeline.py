"""End to end: generated exports -> ingest -> dbt -> published marts, through Dagster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from conftest import generate_sample, run_isolated
from orchestration.locking import WarehouseLock
from orchestration.runner import EXIT_BUSY, EXIT_OK, EXIT_USAGE

REPO = Path(__file__).resolve().parents[1]


def query(path: Path, sql: str, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_run_publishes_fct_calls(pipeline_run):
    assert pipeline_run.outcome.published
    calls = query(pipeline_run.marts, "select count(*) from marts.fct_calls")[0][0]
    missed = query(pipeline_run.marts, "select count(*) from marts.fct_calls where is_missed")[0][0]
    assert calls > 1000
    assert 0 < missed < calls
    # the published file holds the marts schema only: no raw numbers, no other schemas
    schemas = {r[0] for r in query(pipeline_run.marts, "select distinct table_schema from information_schema.tables")}
    assert schemas == {"marts"}


def test_builds_leave_their_log_but_no_json_artifacts(pipeline_run):
    """The pipeline's dbt builds run with --no-write-json (orchestration/assets/dbt.py): the
    run above succeeded on dbt's structured log alone, and its target directories hold no
    manifest.json or run_results.json."""
    for op in ("ringledger_dbt_models", "ringledger_dbt_marts"):
        dirs = sorted((REPO / "target").glob(f"{op}-*"), key=lambda path: path.stat().st_mtime)
        assert dirs, op
        newest = dirs[-1]
        # the file log is text at debug level (orchestration/assets/dbt.py FILE_LOG_ARGS),
        # SQL statements included; JSON lines only on the stdout dagster-dbt reads
        log = (newest / "dbt.log").read_text(errors="replace")
        assert "Running with dbt=" in log
        assert not log.lstrip().startswith("{"), "the build's dbt.log must be text, not JSON"
        assert "SQL status:" in log, "the debug-level file log carries each statement's status"
        assert "\x1b[" not in log, "no colour codes in the file"
        assert not (newest / "run_results.json").exists()
        assert not (newest / "manifest.json").exists()


def test_legs_deduplicated_across_overlapping_files(pipeline_run):
    raw, distinct = query(
        pipeline_run.warehouse,
        "select count(*), count(distinct source_system || '|' || call_id) from raw.telephony_legs",
    )[0]
    deduped = query(pipeline_run.warehouse, "select count(*) from intermediate.int_legs_deduplicated")[0][0]
    assert raw > distinct, "the generator's overlapping daily files must repeat some legs"
    assert deduped == distinct


def test_every_file_reconciles(pipeline_run):
    bad = query(
        pipeline_run.warehouse,
        "select file from raw.load_ledger where rows_read <> rows_loaded + rows_rejected",
    )
    assert bad == []
    rejected_in_ledger = query(pipeline_run.warehouse, "select coalesce(sum(rows_rejected), 0) from raw.load_ledger where status = 'loaded'")[0][0]
    rejected_rows = query(pipeline_run.warehouse, "select count(*) from raw.rejected_rows")[0][0]
    assert rejected_in_ledger == rejected_rows


def test_numbers_normalized_and_hashed(pipeline_run):
    rows = query(
        pipeline_run.warehouse,
        "select from_number, from_number_e164, from_number_key from raw.telephony_legs "
        "where from_number_is_valid limit 200",
    )
    assert rows
    for raw_text, e164, key in rows:
        assert e164.startswith("+") and e164[1:].isdigit()
        assert key and e164 not in key
    # no caller number leaks into the published calls
    leaked = query(
        pipeline_run.marts,
        "select count(*) from marts.fct_calls where caller_key like '+%' or caller_key similar to '[0-9]{7,}'",
    )[0][0]
    assert leaked == 0


def test_times_converted_to_utc_from_site_local(pipeline_run):
    rows = query(
        pipeline_run.warehouse,
        """
        select legs.started_at, legs.started_at_utc, sites.time_zone
        from raw.telephony_legs as legs
        join seeds.sites as sites on legs.site_resolved = sites.site
        where legs.started_at not like '%Z' and legs.started_at not like '%+%'
          and length(legs.started_at) >= 19 and substr(legs.started_at, 20) not like '%-%'
        limit 200
        """,
    )
    assert rows
    for local_text, utc_value, zone in rows:
        local = datetime.fromisoformat(local_text).replace(tzinfo=ZoneInfo(zone))
        expected = local.astimezone(timezone.utc).replace(tzinfo=None)
        assert utc_value == expected, (local_text, zone)


def test_second_run_on_same_landing_changes_nothing(pipeline_run, tmp_path):
    before = query(pipeline_run.marts, "select * from marts.fct_calls order by call_key")
    # same landing directory, plus one telephony file re-delivered under another name
    landing = tmp_path / "landing"
    shutil.copytree(pipeline_run.landing, landing)
    warehouse = tmp_path / "warehouse.duckdb"
    marts = tmp_path / "ringledger.duckdb"
    assert run_isolated(landing, warehouse, marts).exit_code == EXIT_OK
    first = query(marts, "select * from marts.fct_calls order by call_key")
    assert first == before
    source = sorted((landing / "telephony").glob("*.csv"))[3]
    shutil.copyfile(source, source.with_name(source.stem + "_resent.csv"))
    outcome = run_isolated(landing, warehouse, marts)
    assert outcome.exit_code == EXIT_OK
    assert query(marts, "select * from marts.fct_calls order by call_key") == before
    statuses = query(warehouse, "select count(*) from raw.load_ledger")[0][0]
    assert statuses >= len(list(landing.rglob("*.csv")))


def test_run_exits_5_when_warehouse_is_held(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    warehouse = tmp_path / "warehouse.duckdb"
    with WarehouseLock(warehouse):
        outcome = run_isolated(landing, warehouse)
    assert outcome.exit_code == EXIT_BUSY
    assert "another ringledger run" in outcome.errors[0]


def test_config_with_wrong_header_is_refused(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "callback_slas.csv").write_text("intent,minutes\nhigh_intent,10\n")
    outcome = run_isolated(tmp_path / "landing", tmp_path / "warehouse.duckdb", config_dir=config)
    assert outcome.exit_code == EXIT_USAGE
    assert "callback_slas.csv" in outcome.errors[0] and "sla_business_minutes" in outcome.errors[0]


def test_config_with_unknown_var_is_refused(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "vars.yml").write_text("short_abandon_secs: 3\n")
    outcome = run_isolated(tmp_path / "landing", tmp_path / "warehouse.duckdb", config_dir=config)
    assert outcome.exit_code == EXIT_USAGE
    assert "short_abandon_secs" in outcome.errors[0]


@pytest.mark.slow
def test_cli_run_on_another_directory(tmp_path):
    landing = tmp_path / "exports"
    generate_sample(landing, days=7, calls_per_day=40)
    warehouse = tmp_path / "elsewhere" / "wh.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGLEDGER_")}
    env["RINGLEDGER_HASH_KEY"] = "cli-test-key"
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "ringledger"), "run", "--landing", str(landing), "--warehouse", str(warehouse)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "weekly summary" in completed.stdout
    published = warehouse.parent / "ringledger.duckdb"
    assert query(published, "select count(*) from marts.fct_calls")[0][0] > 0
    assert not (REPO / "data" / "elsewhere").exists()


def test_dagster_definitions_validate():
    env = dict(os.environ)
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]


def test_definitions_have_groups_job_schedule_sensor():
    from orchestration.definitions import defs

    repo = defs.get_repository_def()
    groups = {node.group_name for node in repo.asset_graph.asset_nodes}
    assert {"ingest", "seeds", "staging", "intermediate", "marts", "publish"} <= groups
    assert repo.get_job("ringledger_everything")
    assert repo.get_schedule_def("ringledger_daily")
    assert repo.get_sensor_def("landing_files_sensor")

"""The benchmark harness (issue 7) on a tiny generation: the JSON line and its fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from orchestration import bench


def test_plan_scales_days_then_calls():
    assert bench.plan(2_000)[0] == 7
    days, per_day = bench.plan(1_000_000)
    assert days == 100 and abs(days * per_day * bench.LEGS_PER_CALL - 1_000_000) < 1_000
    assert bench.plan(10_000_000)[0] == 365


def test_tree_rss_counts_children():
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; x = bytearray(60_000_000); time.sleep(20)"]
    )
    try:
        for _ in range(100):  # until the child holds its 60 MB
            if bench._tree_rss(child.pid) > 60_000_000:
                break
            time.sleep(0.1)
        assert bench._tree_rss(child.pid) > 60_000_000
        assert bench._tree_rss(os.getpid()) > bench._tree_rss(child.pid)
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_bench_appends_a_json_line(tmp_path):
    results = tmp_path / "results.jsonl"
    result = bench.run_benchmark(2_000, cache=tmp_path / "cache", results_file=results)
    lines = results.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record == result.record
    assert record["exit_code"] == 0, record["errors"]
    assert 1_500 <= record["legs"] <= 3_000
    assert record["raw_telephony_legs"] > 0
    assert set(record["stages"]) == {*bench.STAGES, "overhead"}
    assert record["entity_scan_seconds"] > 0 and record["ratio_to_entity_scan"] > 0
    assert record["stages"]["ingest"] > 0 and record["stages"]["dbt_models"] > 0
    assert record["wall_seconds"] >= sum(record["stages"].values()) - 0.1
    assert record["peak_rss_mb"] > 100  # this interpreter plus dbt
    assert record["bare_scan_seconds"] > 0
    assert record["ratio_to_bare_scan"] == pytest.approx(
        record["wall_seconds"] / record["bare_scan_seconds"], rel=0.01
    )
    assert record["legs_per_second"] > 0
    shares = record["cpu_shares"]
    if shares is not None:  # Linux
        assert set(shares) == {"busy", "iowait", "steal"}
        assert shares["busy"] > 0 and sum(shares.values()) <= 1.0 + 1e-9
    assert record["landing_rows"] >= record["legs"]
    # the default on Linux: builds forked from the run's dbt server (off when the env says so)
    expected = sys.platform.startswith("linux") and (
        os.environ.get("RINGLEDGER_DBT_FORK_SERVER", "1") != "0"
    )
    assert record["dbt_fork_server"] is expected
    # a new warehouse: no parse state saved for it, dbt parses every file
    assert record["dbt_parse"] == "full"
    machine = record["machine"]
    for key in ("cores", "memory_gb", "cpu", "python", "duckdb"):
        assert machine[key]
    # the cache is reused: a second run does not generate again
    marker = tmp_path / "cache" / "generated.json"
    before = marker.stat().st_mtime_ns
    bench.ensure_landing(2_000, tmp_path / "cache")
    assert marker.stat().st_mtime_ns == before


def test_last_day_files_are_the_files_named_with_the_last_date(tmp_path):
    summary = {"plan": {"start": "2025-01-06", "days": 3}}
    for rel in (
        "telephony/calls_2025-01-07.csv",
        "telephony/calls_2025-01-08.csv",
        "crm/contacts_2025-01-07.csv",
        "crm/contacts_2025-01-08.csv",
        "marketing/tracking_numbers.csv",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    names = sorted(str(p.relative_to(tmp_path)) for p in bench.last_day_files(tmp_path, summary))
    assert names == ["crm/contacts_2025-01-08.csv", "telephony/calls_2025-01-08.csv"]


@pytest.mark.slow
def test_day_bench_times_the_last_day_on_the_warehouse_of_the_others(tmp_path):
    results = tmp_path / "results.jsonl"
    cache = tmp_path / "cache"
    result = bench.run_day_benchmark(2_000, cache=cache, results_file=results)
    record = json.loads(results.read_text().splitlines()[0])
    assert record == result.record and record["mode"] == "day"
    assert record["full_exit_code"] == 0 and record["exit_code"] == 0, record["errors"]
    summary = json.loads((cache / "generated.json").read_text())
    day_files = bench.last_day_files(cache / "landing", summary)
    assert any(p.parent.name == "telephony" for p in day_files)
    assert any(p.parent.name == "crm" for p in day_files)
    # the second run is the day on the first run's warehouse: only its files loaded, the
    # warehouse's saved dbt parse reused, the marts patched
    assert record["day_files"] == record["day_files_loaded"] == len(day_files)
    assert record["dbt_parse"] == "partial"
    assert record["day_publish_mode"] == "delta"
    assert record["sync_seconds_before_day"] >= 0
    assert record["day_share"] == pytest.approx(
        record["wall_seconds"] / record["full_wall_seconds"], abs=0.001
    )
    assert set(record["stages"]) == set(record["full_stages"]) == {*bench.STAGES, "overhead"}
    assert record["stages"]["ingest"] > 0 and record["full_stages"]["ingest"] > 0
    # the cache's files were linked, not moved
    assert all(path.is_file() for path in day_files)
    assert len(bench.landing_files(cache / "landing")) == record["files"]


def test_cpu_shares_from_proc_stat_lines():
    # user nice system idle iowait irq softirq steal guest guest_nice
    before = bench.cpu_times("cpu  100 0 50 800 10 0 5 35 20 0\ncpu0 50 0 25 400 5 0 2 18 10 0\n")
    after = bench.cpu_times("cpu  200 0 90 1500 50 0 5 135 60 0\ncpu0 1 1 1 1 1 1 1 1 1 1\n")
    assert before["idle"] == 800 and before["steal"] == 35 and after["iowait"] == 50
    # 980 ticks between them: 140 busy, 700 idle, 40 iowait, 100 steal
    assert bench.cpu_shares(before, after) == {"busy": 0.143, "iowait": 0.041, "steal": 0.102}
    assert bench.cpu_shares(before, None) is None
    assert bench.cpu_shares(after, after) is None
    assert bench.cpu_times("intr 1 2 3\n") is None

"""Gates block publication: each generator fault fails its gate, nothing is published, and
fixing the data publishes again (issue: data-quality gates)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from conftest import generate_sample, run_isolated
from orchestration.gates import GATES, mask_number
from orchestration.runner import EXIT_ERROR, EXIT_GATE, EXIT_OK

DAYS = 10
CALLS_PER_DAY = 50


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def results_of_latest_run(warehouse: Path) -> dict[str, bool]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select gate, passed from marts.data_quality_results where run_id = "
            "(select run_id from marts.data_quality_results order by checked_at desc limit 1)"
        ).fetchall()
    return dict(rows)


@pytest.fixture(scope="module")
def clean_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("clean") / "landing"
    generate_sample(landing, days=DAYS, calls_per_day=CALLS_PER_DAY)
    return landing


@pytest.fixture(scope="module")
def clean_published(clean_landing, tmp_path_factory) -> Path:
    """A warehouse and published file from one clean run (copied by the tests that need one)."""
    root = tmp_path_factory.mktemp("clean_published")
    outcome = run_isolated(clean_landing, root / "wh.duckdb", root / "ringledger.duckdb")
    assert outcome.exit_code == EXIT_OK, outcome.gate_failures or outcome.errors
    return root


def test_clean_run_passes_every_gate(clean_published):
    tmp_path = clean_published
    warehouse, marts = tmp_path / "wh.duckdb", tmp_path / "ringledger.duckdb"
    results = results_of_latest_run(warehouse)
    assert set(results) == set(GATES)
    assert all(results.values())
    quality = json.loads((tmp_path / "ringledger.quality.json").read_text())
    assert quality["passed"] is True and len(quality["gates"]) == len(GATES)
    # the results are published with the marts
    with duckdb.connect(str(marts), read_only=True) as con:
        assert con.execute("select count(*) from marts.data_quality_results").fetchone()[0] == len(
            GATES
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "gate"),
    [
        ("clock-skew", "clock_sync"),
        ("timezone-error", "timezone_offset"),
        ("dirty-numbers", "number_normalization"),
        ("tracking-overlap", "tracking_numbers"),
    ],
)
def test_fault_fails_its_gate_and_publishes_nothing(
    fault, gate, clean_landing, clean_published, tmp_path
):
    # start from a clean run's warehouse and publication
    warehouse, marts = tmp_path / "wh.duckdb", tmp_path / "ringledger.duckdb"
    for name in ("wh.duckdb", "ringledger.duckdb"):
        shutil.copyfile(clean_published / name, tmp_path / name)
    landing = tmp_path / "landing"
    published = digest(marts)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        calls_before = con.execute("select count(*) from marts.fct_calls").fetchone()[0]

    # the same exports, re-delivered with the fault (same file names: corrections)
    generate_sample(landing, days=DAYS, calls_per_day=CALLS_PER_DAY, inject=[fault])
    outcome = run_isolated(landing, warehouse, marts)
    assert outcome.exit_code == EXIT_GATE, (outcome.errors, outcome.gate_failures)
    failed = {f.gate for f in outcome.gate_failures}
    assert gate in failed
    line = next(f.line() for f in outcome.gate_failures if f.gate == gate)
    assert line.startswith(f"GATE {gate} failed: measured ")
    assert digest(marts) == published, "a failed gate must leave the published file untouched"
    assert results_of_latest_run(warehouse)[gate] is False
    quality = json.loads((tmp_path / "ringledger.quality.json").read_text())
    assert quality["passed"] is False
    assert {g["gate"] for g in quality["gates"] if not g["passed"]} == failed
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # the marts were not rebuilt from the faulty data
        assert con.execute("select count(*) from marts.fct_calls").fetchone()[0] == calls_before

    # fixing the data (the clean files again, same names) publishes again
    shutil.rmtree(landing)
    shutil.copytree(clean_landing, landing)
    outcome = run_isolated(landing, warehouse, marts)
    assert outcome.exit_code == EXIT_OK, (outcome.errors, outcome.gate_failures)
    assert all(results_of_latest_run(warehouse).values())


def test_failed_structural_dbt_test_blocks_marts(clean_landing, tmp_path):
    """An error-severity dbt test in the first selection fails its step: no marts, no publish."""
    warehouse, marts = tmp_path / "wh.duckdb", tmp_path / "ringledger.duckdb"
    config = tmp_path / "config"
    config.mkdir()
    sites = Path(__file__).resolve().parents[1] / "seeds" / "sites.csv"
    lines = sites.read_text().splitlines()
    # the same site twice: the `unique` test on seeds.sites fails
    (config / "sites.csv").write_text("\n".join([*lines, lines[1]]) + "\n")
    marts.write_bytes(b"previous publication")
    outcome = run_isolated(clean_landing, warehouse, marts, config_dir=config)
    assert outcome.exit_code == EXIT_ERROR
    assert not outcome.published
    assert marts.read_bytes() == b"previous publication"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        marts_tables = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'marts' "
            "and table_name <> 'data_quality_results'"
        ).fetchone()[0]
    assert marts_tables == 0


def test_mask_number_keeps_last_two_digits():
    assert mask_number("+1 (555) 212-0100") == "+# (###) ###-##00"
    assert mask_number("call me 12") == "**** ** 12"


def test_ingest_prefetches_great_expectations(tmp_path):
    """The ingest asset starts importing GX in the background (~3 s), so the gates step of the
    same process finds it loaded; importing the gates module alone does not load it."""
    script = tmp_path / "prefetch.py"  # a file: pyspark, imported by GX, exits under `-c`
    script.write_text(
        "import sys\n"
        "import orchestration.assets.ingest\n"
        "from orchestration.gates import prefetch_great_expectations\n"
        "before = 'great_expectations' in sys.modules\n"
        "thread = prefetch_great_expectations()\n"
        "assert prefetch_great_expectations() is thread  # once per process\n"
        "thread.join()\n"
        "print(before, 'great_expectations' in sys.modules)\n"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.stdout.split() == ["False", "True"], done.stderr
    # the ingest asset is where it starts
    source = (Path(__file__).resolve().parents[1] / "orchestration/assets/ingest.py").read_text()
    assert "prefetch_great_expectations()" in source


def _dedup_warehouse(path: Path, pending_mode: str | None) -> duckdb.DuckDBPyConnection:
    """The tables gate_deduplication reads, with legs 'old' (loaded at seq 3, twice in
    int_legs_deduplicated) and 'new' (seq 6, once), and a watermark at seq 5."""
    from orchestration.incremental import ensure_state_table

    con = duckdb.connect(str(path))
    for schema in ("staging", "intermediate"):
        con.execute(f"create schema {schema}")
    con.execute(
        "create table staging.stg_telephony__legs as select * from (values "
        "('pbx', 'old', 3), ('pbx', 'new', 6)) as t(source_system, call_id, load_seq)"
    )
    con.execute(
        "create table intermediate.int_legs_deduplicated as select * from (values "
        "('pbx', 'old'), ('pbx', 'old'), ('pbx', 'new')) as t(source_system, call_id)"
    )
    con.execute(
        "create table staging.stg_crm__contacts as select 'c1' as contact_id, "
        "'+12125550100' as phone_e164, null::varchar as mobile_phone_e164"
    )
    con.execute(
        "create table staging.stg_crm__contact_identities as select 'c1' as contact_id, "
        "'i1' as identity_id"
    )
    ensure_state_table(con)
    con.execute("insert into raw.build_state values ('built', 5, 'f', 'incremental', now())")
    if pending_mode is not None:
        con.execute(
            "insert into raw.build_state values ('models_pending', 6, 'f', ?, now())",
            [pending_mode],
        )
    return con


def test_deduplication_gate_reads_the_new_keys_after_an_incremental_build(tmp_path):
    """After an incremental models build the gate groups only the legs of keys with a copy
    loaded since the watermark (the other rows passed an earlier gate); after a full refresh,
    or with no models build pending, it groups every leg and finds the older duplicate."""
    from orchestration.gates import _Validator, gate_deduplication

    validator = _Validator()
    for mode, scoped in (
        ("incremental", True),
        ("full refresh (no earlier build)", False),
        (None, False),
    ):
        with _dedup_warehouse(tmp_path / f"{scoped}{mode is None}.duckdb", mode) as con:
            result = gate_deduplication(con, None, validator)
        # the results table's detail does not depend on the scope (reruns leave it the same)
        assert result.detail.startswith("legs and identities unique" if scoped else "1 duplicate")
        if scoped:
            assert result.passed, result.detail
            assert result.scope.startswith("1 of 3 legs")
        else:
            assert not result.passed and result.measured_value == 1.0, result.detail
            assert result.scope == ""
        validator = _Validator()  # a validation's name is used once per validator
    # a duplicate of a key with a new copy is found by the scoped gate
    with _dedup_warehouse(tmp_path / "new_duplicate.duckdb", "incremental") as con:
        con.execute("insert into intermediate.int_legs_deduplicated values ('pbx', 'new')")
        result = gate_deduplication(con, None, validator)
    assert not result.passed and result.measured_value == 1.0
    assert result.scope.startswith("2 of 4 legs")

"""Shared fixtures: dbt parse once per session, one full pipeline run on generated data, and
the tiny-landing fixtures of the ingest tests (their helpers are in ingest_helpers.py)."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from orchestration.config import Config, load_config
from orchestration.runner import RunOutcome, ensure_manifest, run_pipeline

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Small but complete: four weeks, both sites, every realism feature of the generator.
SAMPLE_DAYS = 28
SAMPLE_CALLS_PER_DAY = 80


def skip_or_fail(reason: str) -> None:
    """Skip on a user's machine; under CI=true a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: CI must provide it)")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    """The manifest must exist before the Dagster definitions load."""
    return ensure_manifest(force=True)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test reads or writes the user's data/ directory or hash key."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("RINGLEDGER_WAREHOUSE", str(base / "default" / "warehouse.duckdb"))
    monkeypatch.setenv("RINGLEDGER_LANDING_DIR", str(base / "default" / "landing"))
    monkeypatch.delenv("RINGLEDGER_MARTS", raising=False)
    monkeypatch.delenv("RINGLEDGER_CONFIG_DIR", raising=False)
    monkeypatch.delenv("RINGLEDGER_SEED_DIR", raising=False)
    monkeypatch.setenv("RINGLEDGER_HASH_KEY", "test-key-not-secret")


@dataclass
class PipelineRun:
    landing: Path
    warehouse: Path
    marts: Path
    outcome: RunOutcome


def generate_sample(landing: Path, **kwargs) -> dict:
    from orchestration.generator import generate

    options = {"days": SAMPLE_DAYS, "calls_per_day": SAMPLE_CALLS_PER_DAY}
    options.update(kwargs)
    return generate(landing, **options)


def run_isolated(landing: Path, warehouse: Path, marts: Path | None = None, **kwargs) -> RunOutcome:
    """run_pipeline with the environment restored afterwards (it points dbt at the file)."""
    saved = dict(os.environ)
    os.environ["RINGLEDGER_HASH_KEY"] = "test-key-not-secret"
    try:
        return run_pipeline(landing=landing, warehouse=warehouse, marts=marts, **kwargs)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, dbt_manifest) -> PipelineRun:
    """One whole run (ingest, dbt build, publish) on generated sample exports."""
    root = tmp_path_factory.mktemp("pipeline")
    landing = root / "landing"
    generate_sample(landing)
    warehouse = root / "warehouse.duckdb"
    marts = root / "ringledger.duckdb"
    outcome = run_isolated(landing, warehouse, marts)
    assert outcome.exit_code == 0, (outcome.errors, outcome.refused_files, outcome.gate_failures)
    return PipelineRun(landing=landing, warehouse=warehouse, marts=marts, outcome=outcome)


@pytest.fixture(scope="session")
def pipeline_warehouse(pipeline_run) -> Path:
    """Path of the warehouse DuckDB file after the session's pipeline run."""
    return pipeline_run.warehouse


# -- tiny landing directories (test_ingest.py, test_formats.py) -----------------------------


@pytest.fixture
def config() -> Config:
    """A copy of the configuration that a test may change."""
    return copy.deepcopy(load_config())


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def con(tmp_path: Path):
    """A fresh warehouse file."""
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()

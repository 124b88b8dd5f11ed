"""`ringledger run` takes its dbt parse from the fork server's warm-up, made during the ingest.

The run is two Dagster runs (the ingest, then the rest): the ingest needs no manifest, so the
fork server's warm-up parse (the run's vars and profile, the warehouse's saved parse state)
runs meanwhile and the runner installs its manifest and state in target/ before the dbt steps,
instead of parsing in its own process first (docs/operations.md). Without a usable warm-up the
runner parses itself, as before.
"""

from __future__ import annotations

import sys

import duckdb
import pytest
from conftest import generate_sample, run_isolated

from orchestration import project, runner

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the dbt fork server runs on Linux only"
)


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """The runner's own parses (parse_manifest calls), by their result."""
    calls: list[str] = []
    original = runner.parse_manifest

    def spy(*args, **kwargs):
        kind = original(*args, **kwargs)
        calls.append(kind)
        return kind

    monkeypatch.setattr(runner, "parse_manifest", spy)
    monkeypatch.delenv(runner.FORK_SERVER_ENV, raising=False)
    return calls


@pytest.fixture
def installs(monkeypatch) -> list[tuple[str | None, int]]:
    """Each installation of the warm-up's parse: its kind and the legs the ledger held then."""
    seen: list[tuple[str | None, int]] = []
    original = runner._install_warm_parse

    def spy(zygote, warehouse):
        with duckdb.connect(str(warehouse), read_only=True) as con:
            (rows,) = con.execute(
                "select coalesce(sum(rows_loaded), 0) from raw.load_ledger"
            ).fetchone()
        kind = original(zygote, warehouse)
        seen.append((kind, int(rows)))
        return kind

    monkeypatch.setattr(runner, "_install_warm_parse", spy)
    return seen


def test_the_run_installs_the_warm_up_parse_after_the_ingest(tmp_path, parses, installs):
    landing = tmp_path / "landing"
    generate_sample(landing, days=3, calls_per_day=30)
    warehouse = tmp_path / "warehouse.duckdb"

    first = run_isolated(landing, warehouse)
    assert first.exit_code == 0, first.errors
    # a new warehouse: a full parse, made by the server, installed once the ingest had loaded
    assert first.dbt_fork_server and first.dbt_parse == "full"
    assert parses == []
    ((kind, rows),) = installs
    assert kind == "full" and rows > 0
    assert runner.saved_parse_state(warehouse).is_file()
    assert project.dbt_project.manifest_path.is_file()

    second = run_isolated(landing, warehouse)
    assert second.exit_code == 0, second.errors
    # the server's warm-up read the state saved for this warehouse by the first run
    assert second.dbt_parse == "partial"
    assert parses == []


def test_the_run_parses_itself_without_a_usable_warm_up(tmp_path, parses, installs, monkeypatch):
    from orchestration.dbt_zygote import DbtZygote

    monkeypatch.setattr(
        DbtZygote, "wait_for_warm_up", lambda self, poll=0.05, timeout=None: "dbt parse failed: x"
    )
    landing = tmp_path / "landing"
    generate_sample(landing, days=2, calls_per_day=20)
    outcome = run_isolated(landing, tmp_path / "warehouse.duckdb")
    assert outcome.exit_code == 0, outcome.errors
    assert installs == [(None, installs[0][1])]
    assert parses == [outcome.dbt_parse] == ["full"]

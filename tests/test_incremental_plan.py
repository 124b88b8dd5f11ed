"""When a build may be incremental (orchestration/incremental.py), on a hand-made ledger."""

from __future__ import annotations

import duckdb
import pytest

from orchestration import incremental


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("create schema raw")
    con.execute(
        "create table raw.load_ledger (file varchar, status varchar, entity varchar, load_seq bigint)"
    )
    con.execute(
        "insert into raw.load_ledger values "
        "('telephony/calls_1.csv', 'loaded', 'telephony', 1), "
        "('marketing/tracking_numbers.csv', 'loaded', 'tracking_numbers', 2), "
        "('crm/contacts_1.csv', 'loaded', 'contacts', 3)"
    )
    yield con
    con.close()


def _built(con, fingerprint="f1"):
    plan = incremental.plan_build(con, fingerprint)
    incremental.record_models_built(con, plan)
    assert incremental.record_marts_built(con, plan)
    return plan


def _load(con, file, entity, status="loaded"):
    (seq,) = con.execute("select max(load_seq) + 1 from raw.load_ledger").fetchone()
    con.execute("insert into raw.load_ledger values (?, ?, ?, ?)", [file, status, entity, seq])


def test_first_build_is_full_then_new_day_is_incremental(con):
    first = incremental.plan_build(con, "f1")
    assert first.full_refresh and first.reason == "no earlier build"
    _built(con)
    assert incremental.last_mode(con) == first.mode
    _load(con, "telephony/calls_2.csv", "telephony")
    _load(con, "crm/contacts_2.csv", "contacts")
    plan = incremental.plan_build(con, "f1")
    assert not plan.full_refresh
    assert plan.through_load_seq == 5


def test_changed_fingerprint_is_full(con):
    _built(con)
    assert incremental.plan_build(con, "f2").full_refresh


def test_new_hashing_key_is_full(con):
    """Ingest rewrites the stored *_key columns in place when the key changes: no new load
    shows it, the per-call models must be rebuilt."""
    con.execute("create table raw.ingest_meta (name varchar, value varchar)")
    con.execute("insert into raw.ingest_meta values ('hash_key_fingerprint', 'k1')")
    _built(con)
    assert not incremental.plan_build(con, "f1").full_refresh
    con.execute("update raw.ingest_meta set value = 'k2'")
    assert incremental.plan_build(con, "f1").full_refresh


def test_correction_since_the_watermark_is_full(con):
    _built(con)
    con.execute("update raw.load_ledger set status = 'superseded' where load_seq = 1")
    _load(con, "telephony/calls_1.csv", "telephony")
    plan = incremental.plan_build(con, "f1")
    assert plan.full_refresh and "calls_1.csv superseded" in plan.reason
    # once built, the same correction no longer forces a full build
    _built(con)
    assert not incremental.plan_build(con, "f1").full_refresh


def test_tracking_numbers_since_the_watermark_are_full(con):
    _built(con)
    _load(con, "marketing/tracking_numbers_2.csv", "tracking_numbers")
    assert incremental.plan_build(con, "f1").full_refresh
    # a refused tracking file changed nothing
    _built(con)
    _load(con, "marketing/tracking_numbers_3.csv", "tracking_numbers", status="refused")
    assert not incremental.plan_build(con, "f1").full_refresh


def test_watermark_moves_only_after_models_and_marts(con):
    _built(con)
    _load(con, "telephony/calls_2.csv", "telephony")
    plan = incremental.plan_build(con, "f1")
    # the marts alone (no complete models build before them) do not move it
    assert not incremental.record_marts_built(con, plan)
    # models built, then the gates stopped the run: still the old watermark
    incremental.record_models_built(con, plan)
    (watermark,) = con.execute(
        "select through_load_seq from raw.build_state where name = 'built'"
    ).fetchone()
    assert watermark == 3
    assert incremental.record_marts_built(con, plan)
    (watermark,) = con.execute(
        "select through_load_seq from raw.build_state where name = 'built'"
    ).fetchone()
    assert watermark == 4


def test_a_subset_models_build_after_a_complete_one_keeps_the_watermark(con):
    """A complete models build, then a build of a subset of the models (forget_models_built):
    the marts that follow do not move the watermark, and the deduplication gate, which scopes
    itself by the pending complete build, reads every leg."""
    from orchestration.gates import pending_incremental_watermark

    _built(con)
    _load(con, "telephony/calls_2.csv", "telephony")
    plan = incremental.plan_build(con, "f1")
    incremental.record_models_built(con, plan)
    assert pending_incremental_watermark(con) == 3
    incremental.forget_models_built(con)
    assert pending_incremental_watermark(con) is None
    assert not incremental.record_marts_built(con, plan)
    (watermark,) = con.execute(
        "select through_load_seq from raw.build_state where name = 'built'"
    ).fetchone()
    assert watermark == 3


def test_fingerprint_follows_vars_and_seeds(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "sites.csv").write_text("site,time_zone\nnyc,America/New_York\n")
    base = incremental.fingerprint('{"a": 1}', seeds, "duckdb")
    assert base == incremental.fingerprint('{"a": 1}', seeds, "duckdb")
    assert base != incremental.fingerprint('{"a": 2}', seeds, "duckdb")
    (seeds / "sites.csv").write_text("site,time_zone\nnyc,America/Chicago\n")
    assert base != incremental.fingerprint('{"a": 1}', seeds, "duckdb")

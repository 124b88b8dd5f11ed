"""The parts of an ingest that cost the same whatever is new: hashing the landing files and
rebuilding the contact identities are skipped when nothing they depend on changed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from ingest_helpers import ingest, ledger, put, query, scalar

from orchestration.ingest import identity

LEG_HEADER = "call_id,direction,started_at,ended_at,from_number,to_number,status"
CONTACTS_HEADER = "contact_id,phone,mobile_phone,email,created_at,updated_at,lifecycle,owner"


def legs_csv(*call_ids: str) -> str:
    rows = [
        f"{call_id},inbound,2025-01-06 09:00:00,2025-01-06 09:05:00,"
        "(212) 555-0100,+12125550101,no_answer"
        for call_id in call_ids
    ]
    return "\n".join([LEG_HEADER, *rows]) + "\n"


def contacts_csv(*rows: str) -> str:
    return "\n".join([CONTACTS_HEADER, *rows]) + "\n"


def set_mtime(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def reads(monkeypatch) -> dict[str, int]:
    """How many times each landing file's bytes were read (by name)."""
    counts: dict[str, int] = {}
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        counts[self.name] = counts.get(self.name, 0) + 1
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return counts


# -- content hashes ---------------------------------------------------------------------------


def test_an_unchanged_file_is_not_read_again(con, landing, config, reads):
    path = put(landing, "telephony/calls.csv", legs_csv("c1", "c2"))
    set_mtime(path, time.time_ns() - 60 * 10**9)  # written a minute before it is hashed
    ingest(con, landing, config)
    assert reads["calls.csv"] >= 1
    reads.clear()
    summary = ingest(con, landing, config)
    assert summary.files_skipped_unchanged == 1
    assert reads.get("calls.csv", 0) == 0
    # the ledger still holds the content hash
    assert len(ledger(con)) == 1


def test_a_rewritten_file_with_a_new_mtime_is_hashed_and_loaded(con, landing, config, reads):
    path = put(landing, "telephony/calls.csv", legs_csv("c1", "c2"))
    old = time.time_ns() - 60 * 10**9
    set_mtime(path, old)
    ingest(con, landing, config)
    put(landing, "telephony/calls.csv", legs_csv("c1", "c3"))  # same size, new content
    set_mtime(path, old + 10**9)
    reads.clear()
    summary = ingest(con, landing, config)
    assert reads["calls.csv"] >= 1
    assert summary.files_loaded == 1
    assert {r["call_id"] for r in query(con, "select call_id from raw.telephony_legs")} == {
        "c1",
        "c3",
    }
    assert [r["status"] for r in ledger(con)] == ["superseded", "loaded"]


@pytest.mark.parametrize(
    ("age_seconds", "reloaded"),
    [
        (0, True),  # modified as it was hashed: racy, so hashed again
        (60, False),  # modified well before: size and mtime are trusted (as git does)
    ],
)
def test_same_size_and_mtime_is_rehashed_only_in_the_racy_window(
    con, landing, config, reads, age_seconds, reloaded
):
    path = put(landing, "telephony/calls.csv", legs_csv("c1", "c2"))
    mtime = time.time_ns() - age_seconds * 10**9
    set_mtime(path, mtime)
    ingest(con, landing, config)
    put(landing, "telephony/calls.csv", legs_csv("c1", "c3"))
    set_mtime(path, mtime)  # the rewrite keeps the size and the mtime
    reads.clear()
    summary = ingest(con, landing, config)
    assert (reads.get("calls.csv", 0) > 0) is reloaded
    assert summary.files_loaded == int(reloaded)
    ids = {r["call_id"] for r in query(con, "select call_id from raw.telephony_legs")}
    assert ids == ({"c1", "c3"} if reloaded else {"c1", "c2"})


def test_the_cache_follows_the_landing_files(con, landing, config):
    for name in ("a.csv", "b.csv"):
        set_mtime(put(landing, f"telephony/{name}", legs_csv(name)), time.time_ns() - 10**11)
    ingest(con, landing, config)
    assert scalar(con, "select count(*) from raw.file_hash_cache") == 2
    (landing / "telephony" / "b.csv").unlink()  # removing a file retracts nothing
    ingest(con, landing, config)
    paths = [r["path"] for r in query(con, "select path from raw.file_hash_cache")]
    assert paths == [str((landing / "telephony" / "a.csv").absolute())]
    assert scalar(con, "select count(*) from raw.telephony_legs") == 2


def test_a_warehouse_without_the_cache_table_still_ingests(con, landing, config):
    put(landing, "telephony/calls.csv", legs_csv("c1"))
    ingest(con, landing, config)
    con.execute("drop table raw.file_hash_cache")  # as a warehouse of an earlier version
    summary = ingest(con, landing, config)
    assert summary.files_skipped_unchanged == 1
    assert scalar(con, "select count(*) from raw.file_hash_cache") == 1


# -- contact identities -----------------------------------------------------------------------


@pytest.fixture
def rebuilds(monkeypatch) -> list[str]:
    """One entry per recomputation of the contact identities: 'full' or 'update' (only the
    identities the added contacts can touch)."""
    calls: list[str] = []
    real_rebuild = identity.rebuild_contact_identities
    real_update = identity.update_contact_identities

    def rebuild(con) -> int:
        calls.append("full")
        return real_rebuild(con)

    def update(con, through) -> int:
        calls.append("update")
        return real_update(con, through)

    monkeypatch.setattr(identity, "rebuild_contact_identities", rebuild)
    monkeypatch.setattr(identity, "update_contact_identities", update)
    return calls


def identities(con) -> list[tuple]:
    return con.execute("select * from raw.crm_contact_identities order by all").fetchall()


def test_identities_are_rebuilt_only_when_the_contacts_change(con, landing, config, rebuilds):
    put(
        landing,
        "crm/contacts.csv",
        contacts_csv(
            "k1,(212) 555-0100,,,2024-05-01,,lead,",
            "k2,212-555-0100,+1 310 555 0100,,2024-06-01,,lead,",
        ),
    )
    ingest(con, landing, config)
    assert rebuilds == ["full"]
    put(landing, "telephony/calls.csv", legs_csv("c1"))  # telephony only
    ingest(con, landing, config)
    assert rebuilds == ["full"]
    ingest(con, landing, config)  # nothing new
    assert rebuilds == ["full"]
    put(landing, "crm/contacts_2.csv", contacts_csv("k3,(310) 555-0100,,,2024-01-01,,lead,"))
    ingest(con, landing, config)
    assert rebuilds == ["full", "update"]  # contacts added only
    kept = identities(con)
    assert ("k1", "k3", 3) in kept
    identity.rebuild_contact_identities(con)  # forced
    assert identities(con) == kept
    # a retraction (header-only correction) deletes contacts: a full rebuild
    put(landing, "crm/contacts_2.csv", contacts_csv())
    ingest(con, landing, config)
    assert rebuilds == ["full", "update", "full", "full"]  # the forced one, then this run's
    assert ("k1", "k1", 2) in identities(con)


def test_identities_updated_for_added_contacts_equal_a_full_rebuild(con, landing, config, rebuilds):
    """Batches of new and re-delivered contacts over a few shared numbers (merges, splits when
    a number changes or goes, survivors moving with created_at): after each ingest the
    identities, updated for the added contacts only, equal a merge of all current contacts."""
    import random

    from orchestration.ingest.identity import _CURRENT_CONTACTS, merge_identities

    rng = random.Random(7)
    numbers = [""] * 12 + [f"(212) 555-01{n:02d}" for n in range(24)]
    split = False  # a contact's identity got smaller at some batch
    before: dict[str, int] = {}
    for batch in range(12):
        rows = []
        for contact in rng.sample(range(40), 10):
            created = f"2024-0{rng.randint(1, 9)}-0{rng.randint(1, 9)}"
            rows.append(f"k{contact},{rng.choice(numbers)},{rng.choice(numbers)},,{created},,lead,")
        put(landing, f"crm/contacts_{batch:02d}.csv", contacts_csv(*rows))
        ingest(con, landing, config)
        current = con.execute(_CURRENT_CONTACTS).fetchall()
        assert identities(con) == sorted(merge_identities(current)), batch
        sizes = {contact_id: size for contact_id, _, size in identities(con)}
        split = split or any(sizes[k] < before[k] for k in before)
        before = sizes
    assert split
    assert rebuilds == ["full"] + ["update"] * 11
    sizes = [size for _, _, size in identities(con)]
    assert max(sizes) > 2 and 1 in sizes  # the numbers did merge some contacts, not all


def test_identities_lost_to_a_crash_are_rebuilt_on_the_next_run(con, landing, config, monkeypatch):
    put(landing, "crm/contacts.csv", contacts_csv("k1,(212) 555-0100,,,2024-05-01,,lead,"))

    def crash(con) -> int:
        raise KeyboardInterrupt

    real_rebuild = identity.rebuild_contact_identities
    monkeypatch.setattr(identity, "rebuild_contact_identities", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(con, landing, config)  # the contacts are committed, their identities are not
    monkeypatch.setattr(identity, "rebuild_contact_identities", real_rebuild)
    assert identities(con) == []
    summary = ingest(con, landing, config)
    assert summary.files_skipped_unchanged == 1
    assert identities(con) == [("k1", "k1", 1)]


def test_identities_emptied_since_they_were_built_are_rebuilt(con, landing, config):
    put(landing, "crm/contacts.csv", contacts_csv("k1,(212) 555-0100,,,2024-05-01,,lead,"))
    ingest(con, landing, config)
    con.execute("delete from raw.crm_contact_identities")
    ingest(con, landing, config)
    assert identities(con) == [("k1", "k1", 1)]


# -- dbt invocations ----------------------------------------------------------------------------


def test_the_pipeline_builds_write_no_json_artifacts(monkeypatch):
    from orchestration.assets.dbt import ARTIFACTS_ENV, build_args

    monkeypatch.delenv(ARTIFACTS_ENV, raising=False)
    args = build_args(["--vars", "{}"])
    assert args[:3] == ["build", "--vars", "{}"]
    assert "--no-write-json" in args
    monkeypatch.setenv(ARTIFACTS_ENV, "1")
    assert "--no-write-json" not in build_args(["--vars", "{}"])


def test_a_warehouse_keeps_its_dbt_parse_state_across_parses_for_others(tmp_path, monkeypatch):
    """dbt's partial-parse state is keyed on the profile, which holds the warehouse path: a
    parse for another warehouse in between (the test suite, a benchmark, `dagster dev`) must
    not make the next run's parse of this warehouse a full one."""
    from orchestration import runner
    from orchestration.config import load_config

    vars_arg = ["--vars", json.dumps(load_config(None).dbt_vars())]
    first, second = tmp_path / "a" / "warehouse.duckdb", tmp_path / "b" / "warehouse.duckdb"
    kinds = []
    for warehouse in (first, second, first):
        monkeypatch.setenv("RINGLEDGER_WAREHOUSE", str(warehouse))
        kinds.append(runner.parse_manifest(vars_arg, warehouse))
    assert kinds == ["full", "full", "partial"]
    assert runner.saved_parse_state(second).is_file()


def _target_dir(root: Path, name: str, dir_age: float, log_age: float | None, now: float) -> Path:
    path = root / name
    (path / "compiled").mkdir(parents=True)
    if log_age is not None:
        log = path / "dbt.log"
        log.write_text("log\n")
        os.utime(log, (now - log_age, now - log_age))
    os.utime(path, (now - dir_age, now - dir_age))
    return path


def test_old_dbt_target_dirs_are_pruned_but_not_active_ones(tmp_path, monkeypatch):
    from orchestration.assets.dbt import PRUNE_IDLE_SECONDS, prune_target_dirs

    target = tmp_path / "target"
    monkeypatch.setenv("DBT_TARGET_PATH", str(target))
    now = time.time()
    hour = 3600.0
    # a directory created long ago whose dbt.log is still being written: the most recent
    writing = _target_dir(target, "ringledger_dbt_models-aaaaaaa-0000001", 9 * hour, 60, now)
    newest = _target_dir(target, "ringledger_dbt_models-aaaaaaa-0000002", 360, 360, now)
    recent = _target_dir(target, "ringledger_dbt_models-bbbbbbb-0000003", 1800, 1800, now)
    old = [
        _target_dir(target, f"ringledger_dbt_models-ccccccc-00000{i}0", age * hour, None, now)
        for i, age in enumerate((2, 3, 5))
    ]
    other_op = _target_dir(target, "ringledger_dbt_marts-ccccccc-0000009", 8 * hour, 8 * hour, now)
    assert PRUNE_IDLE_SECONDS < 2 * hour

    removed = prune_target_dirs("ringledger_dbt_models", keep=2, now=now)

    assert sorted(removed) == sorted(old)
    assert not any(path.exists() for path in old)
    # the two most recently active are kept; the third is beyond `keep` but active recently
    assert writing.exists() and newest.exists() and recent.exists()
    assert other_op.exists()
    assert prune_target_dirs("ringledger_dbt_models", keep=2, now=now + 2 * hour) == [recent]


# -- dbt invocations -----------------------------------------------------------------------------


def test_the_dbt_version_comes_from_this_environment_without_a_child(monkeypatch):
    """The version dagster-dbt asks a `dbt --version` child for is this environment's dbt-core,
    read from its package metadata: the same version, no child started."""
    import subprocess

    from dagster_dbt.core import resource as dagster_dbt_resource

    from orchestration.resources import dbt_resource

    dbt = dbt_resource()
    printed = subprocess.check_output([dbt.dbt_executable, "--version"], text=True)

    def no_child(*args, **kwargs):
        raise AssertionError(f"a child was started: {args}")

    monkeypatch.setattr(dagster_dbt_resource, "check_output", no_child)
    assert f"installed: {dbt_resource()._cli_version}" in printed


def test_a_dbt_invocation_loads_no_adapter_in_this_process(monkeypatch):
    """dagster-dbt's in-process adapter handle (every macro of the project parsed, ~2.6 s a
    build) is not built: ringledger never fetches row counts or column metadata through it."""
    from dbt.parser.manifest import ManifestLoader

    from orchestration.resources import dbt_resource

    loads: list[object] = []
    real = ManifestLoader.load_macros

    def counted(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ManifestLoader, "load_macros", counted)
    invocation = dbt_resource().cli(["--version"])
    invocation.wait()
    assert invocation.is_successful()
    assert invocation.adapter is None
    assert loads == []

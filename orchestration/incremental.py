"""When dbt may build the incremental models from what was loaded since the last build.

The per-call models (`int_legs_deduplicated`, `int_calls`, `int_calls_classified`; the
mart `fct_calls` is a view over the last) are incremental on DuckDB: a build recomputes only the calls touched by rows
loaded after the warehouse's watermark (`raw.build_state`, the highest ledger `load_seq` that
a complete build of the models and the marts has consumed) and leaves every other call's rows
as they are (macros/incremental.sql); so are the CRM exports' `int_crm_*_deduplicated` models,
by record id (the ids with a copy loaded after the watermark), the activities' call links (the
activities of `int_crm_activities_touched`), the collapsed episodes by caller number
(`int_callers_touched`), and the per-call `unique` tests read only the touched calls' rows
(macros/test_unique_per_call.sql). That is only equal to a
full rebuild when nothing else changed, so a build is a full refresh (`dbt build
--full-refresh`) when:

- the warehouse has no watermark yet (first build, or a warehouse from an older version);
- the fingerprint changed: dbt vars, seeds in force, the project's models, macros or
  `dbt_project.yml` (a changed rule or threshold can change every call), or the hashing key
  (ingest rewrites every stored `*_key` column in place when it changes);
- a loaded file since the watermark superseded or retracted an earlier file (its rows were
  deleted from raw: the calls they belonged to cannot be found from the new rows);
- tracking numbers were loaded since the watermark (a campaign can change on any call).

The watermark advances only when the marts build of a run succeeds after a complete models
build (`record_models_built` then `record_marts_built`): a run stopped by a failed test or gate
leaves it where it was, and the next build recomputes a superset of what changed, which is
idempotent. On Spark every model is a plain table (no incremental models on Parquet without
keys; docs/scale-out.md), so none of this applies there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration import project

STATE_TABLE = "raw.build_state"
# raw tables whose new rows can change any call (not only the calls they name)
REBUILD_ENTITIES = ("tracking_numbers",)


@dataclass(frozen=True)
class BuildPlan:
    full_refresh: bool
    reason: str
    # highest load_seq of the ledger when the plan was made: the next watermark
    through_load_seq: int
    fingerprint: str

    @property
    def mode(self) -> str:
        return f"full refresh ({self.reason})" if self.full_refresh else "incremental"


def fingerprint(vars_json: str, seed_dir: Path | None, engine: str) -> str:
    """Hash of everything besides the loaded data that the models read."""
    digest = hashlib.sha256()
    digest.update(f"engine={engine}\nvars={vars_json}\n".encode())
    files = [project.DBT_PROJECT_FILE]
    for folder in ("models", "macros"):
        files += sorted((project.REPO_ROOT / folder).rglob("*.*"))
    files += sorted((seed_dir or project.SEEDS_DIR).glob("*.csv"))
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(path.anchor)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def ensure_state_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ("
        "name VARCHAR PRIMARY KEY, "  # 'built' (the watermark) or 'models_pending'
        "through_load_seq BIGINT, "
        "fingerprint VARCHAR, "
        "mode VARCHAR, "
        "recorded_at TIMESTAMP)"
    )


def _state(con: duckdb.DuckDBPyConnection, name: str) -> tuple[int, str] | None:
    row = con.execute(
        f"SELECT through_load_seq, fingerprint FROM {STATE_TABLE} WHERE name = ?", [name]
    ).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _with_hash_key(con: duckdb.DuckDBPyConnection, fingerprint_: str) -> str:
    """`fingerprint_` combined with the hashing key's fingerprint in raw.ingest_meta: a new
    key rewrites every stored `*_key` column in place (no new load), which only a full
    build carries into the per-call models."""
    try:
        row = con.execute(
            "SELECT value FROM raw.ingest_meta WHERE name = 'hash_key_fingerprint'"
        ).fetchone()
    except duckdb.CatalogException:
        row = None
    key = row[0] if row else ""
    return hashlib.sha256(f"{fingerprint_}\0{key}".encode()).hexdigest()


def plan_build(con: duckdb.DuckDBPyConnection, current_fingerprint: str) -> BuildPlan:
    """Full refresh or incremental, for the builds of this run (see the module docstring)."""
    ensure_state_table(con)
    current_fingerprint = _with_hash_key(con, current_fingerprint)
    through = con.execute("SELECT coalesce(max(load_seq), -1) FROM raw.load_ledger").fetchone()[0]
    built = _state(con, "built")

    def plan(full: bool, reason: str) -> BuildPlan:
        return BuildPlan(full, reason, int(through), current_fingerprint)

    if built is None:
        return plan(True, "no earlier build")
    watermark, built_fingerprint = built
    if built_fingerprint != current_fingerprint:
        return plan(True, "vars, seeds, models or the hashing key changed")
    corrected = con.execute(
        "SELECT min(new.file) FROM raw.load_ledger AS new "
        "JOIN raw.load_ledger AS old ON old.file = new.file AND old.status = 'superseded' "
        "WHERE new.load_seq > ? AND old.load_seq < new.load_seq",
        [watermark],
    ).fetchone()[0]
    if corrected is not None:
        return plan(True, f"{corrected} superseded an earlier delivery")
    rebuilding = con.execute(
        "SELECT min(file) FROM raw.load_ledger WHERE load_seq > ? AND status = 'loaded' "
        "AND entity IN (SELECT unnest(?))",
        [watermark, list(REBUILD_ENTITIES)],
    ).fetchone()[0]
    if rebuilding is not None:
        return plan(True, f"{rebuilding} loaded")
    return plan(False, "")


def _record(con: duckdb.DuckDBPyConnection, name: str, plan: BuildPlan, seq: int | None = None):
    con.execute(
        f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?, ?, ?, now()::TIMESTAMP)",
        [name, plan.through_load_seq if seq is None else seq, plan.fingerprint, plan.mode],
    )


def record_models_built(con: duckdb.DuckDBPyConnection, plan: BuildPlan) -> None:
    """Every staging and intermediate model was built on the loads up to the plan's seq."""
    ensure_state_table(con)
    _record(con, "models_pending", plan)


def forget_models_built(con: duckdb.DuckDBPyConnection) -> None:
    """A build of a subset of the models ran after the pending complete one: the marts that
    follow do not move the watermark (the next build recomputes a superset)."""
    ensure_state_table(con)
    con.execute(f"DELETE FROM {STATE_TABLE} WHERE name = 'models_pending'")


def built_through(con: duckdb.DuckDBPyConnection) -> int | None:
    """The warehouse's watermark (None before its first complete build)."""
    ensure_state_table(con)
    built = _state(con, "built")
    return built[0] if built else None


def record_marts_built(con: duckdb.DuckDBPyConnection, plan: BuildPlan) -> bool:
    """The marts were built too: the models' pending watermark becomes the warehouse's.
    False when no complete models build of the same fingerprint preceded the marts."""
    ensure_state_table(con)
    pending = _state(con, "models_pending")
    if pending is None or pending[1] != plan.fingerprint:
        return False
    _record(con, "built", plan, seq=pending[0])
    con.execute(f"DELETE FROM {STATE_TABLE} WHERE name = 'models_pending'")
    return True


def last_mode(con: duckdb.DuckDBPyConnection) -> str | None:
    """How the last complete build ran ('incremental' or 'full refresh (...)')."""
    try:
        row = con.execute(f"SELECT mode FROM {STATE_TABLE} WHERE name = 'built'").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None

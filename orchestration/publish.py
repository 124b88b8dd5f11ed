"""Publication of the marts to the read-only file BI tools open (atomic replace).

A publish writes a new file beside the published one and renames it over it. The new file is
either built from nothing (every marts table compressed again: a full publish) or, after
incremental builds, a copy of the file published last with `fct_calls` patched: the rows of
the calls the builds since then recomputed (`raw.publish_delta`, noted after each marts
build from `intermediate.int_calls_touched`) deleted and inserted again; likewise
`fct_missed_call_episodes_stored`, by the episodes the builds wrote (`raw.publish_delta_episodes`,
from `intermediate.int_missed_call_episodes_enriched`) and those it no longer holds; every other
table replaced whole (docs/operations.md, "Publication after an incremental run is a patch").
`fct_missed_call_episodes`, a view over two marts tables, is published as the same view over
the file's own copies of them (the other views, such as `fct_calls`, read other schemas: they
are published as tables). A
delta is used only when the file on disk is the one this warehouse published last (same path,
inode, size and mtime, recorded in `raw.publish_state`), no full-refresh build, Spark build or
other change of every call happened since, and the calls patched since the last full publish
stay under the var publish_full_after_patched_share of fct_calls; anything else publishes in
full.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

PUBLISHED_SCHEMA = "marts"
# the mart whose rows are the per-call models' (incremental on DuckDB): patched by a delta
DELTA_TABLE = "fct_calls"
DELTA_KEY = "call_id"
STATE_TABLE = "raw.publish_state"
DELTA_CALLS = "raw.publish_delta"
TOUCHED = "intermediate.int_calls_touched"
# the stored episodes (the fct_missed_call_episodes view's rows without its as-of columns):
# patched by the episodes written since the last publish
EPISODES_TABLE = "fct_missed_call_episodes_stored"
EPISODES_KEY = "episode_id"
DELTA_EPISODES = "raw.publish_delta_episodes"
# the episodes a build wrote: their load_seq there is above the watermark it started from
EPISODES_WRITTEN = "intermediate.int_missed_call_episodes_enriched"
# views over marts tables only (their relations named without a catalog): published as views
PUBLISHED_VIEWS = ("fct_missed_call_episodes",)


def ensure_publish_state(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ("
        "name VARCHAR PRIMARY KEY, "  # 'published' (the file last published) or 'full_pending'
        "marts_path VARCHAR, inode BIGINT, size BIGINT, mtime_ns BIGINT, "
        "mode VARCHAR, delta_calls BIGINT, recorded_at TIMESTAMP)"
    )
    con.execute(f"CREATE TABLE IF NOT EXISTS {DELTA_CALLS} ({DELTA_KEY} VARCHAR)")
    con.execute(f"CREATE TABLE IF NOT EXISTS {DELTA_EPISODES} ({EPISODES_KEY} VARCHAR)")


def _exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".")
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def note_marts_built(
    con: duckdb.DuckDBPyConnection, incremental: bool, episodes_since: int | None = None
) -> None:
    """After a complete marts build: the calls it recomputed, and the episodes it wrote (their
    load_seq in int_missed_call_episodes_enriched above `episodes_since`, the watermark the
    build started from), join the delta of the next publish; a build that was not
    incremental makes the next publish a full one."""
    ensure_publish_state(con)
    # where the marts store episodes, their delta: the episodes written since the watermark
    stores_episodes = _exists(con, f"{PUBLISHED_SCHEMA}.{EPISODES_TABLE}")
    episodes_known = episodes_since is not None and _exists(con, EPISODES_WRITTEN)
    if incremental and _exists(con, TOUCHED) and (episodes_known or not stores_episodes):
        con.execute(
            f"INSERT INTO {DELTA_CALLS} SELECT DISTINCT call_id FROM {TOUCHED} WHERE kind = 'root'"
        )
        if stores_episodes:
            con.execute(
                f"INSERT INTO {DELTA_EPISODES} SELECT {EPISODES_KEY} FROM {EPISODES_WRITTEN} "
                "WHERE load_seq > ?",
                [episodes_since],
            )
        return
    # no touched set or no episodes written (or not an incremental build): publish in full
    con.execute(
        f"INSERT OR REPLACE INTO {STATE_TABLE} (name, mode, recorded_at) "
        "VALUES ('full_pending', 'full', now()::TIMESTAMP)"
    )


def _identity(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True)
class PublishResult:
    counts: dict[str, int]
    mode: str  # 'full' or 'delta'
    delta_calls: int = 0


def delta_calls(
    con: duckdb.DuckDBPyConnection, marts_path: Path, full_after_share: float
) -> int | None:
    """How many calls a delta publish would patch, None when the publish must be full: see
    the module docstring, and once the calls patched since the last full publish (the
    `delta_calls` of the 'published' row) would exceed `full_after_share` of fct_calls' rows
    (a patched file keeps the space of its deleted rows; a full publish writes it compactly)."""
    ensure_publish_state(con)
    rows = dict(
        (row[0], row[1:])
        for row in con.execute(
            f"SELECT name, marts_path, inode, size, mtime_ns, delta_calls FROM {STATE_TABLE}"
        ).fetchall()
    )
    if "full_pending" in rows or "published" not in rows or not marts_path.is_file():
        return None
    *identity, patched_before = rows["published"]
    if tuple(identity) != _identity(marts_path):
        return None  # another file, or changed since this warehouse published it
    pending = con.execute(f"SELECT count(DISTINCT {DELTA_KEY}) FROM {DELTA_CALLS}").fetchone()[0]
    try:
        calls = con.execute(f"SELECT count(*) FROM {PUBLISHED_SCHEMA}.{DELTA_TABLE}").fetchone()[0]
    except duckdb.CatalogException:
        return None
    if (patched_before or 0) + pending > full_after_share * calls:
        return None
    return pending


def _record_published(con: duckdb.DuckDBPyConnection, marts_path: Path, result) -> None:
    """The file just published, and the calls patched since the last full publish."""
    patched = 0
    if result.mode == "delta":
        row = con.execute(
            f"SELECT delta_calls FROM {STATE_TABLE} WHERE name = 'published'"
        ).fetchone()
        patched = (row[0] or 0) + result.delta_calls if row else result.delta_calls
    con.execute(f"DELETE FROM {STATE_TABLE}")
    con.execute(f"DELETE FROM {DELTA_CALLS}")
    con.execute(f"DELETE FROM {DELTA_EPISODES}")
    con.execute(
        f"INSERT INTO {STATE_TABLE} VALUES ('published', ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
        [*_identity(marts_path), result.mode, patched],
    )


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[tuple]:
    return con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = ? and table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [catalog, PUBLISHED_SCHEMA, table],
    ).fetchall()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_prefix(marts_path: Path) -> str:
    return f".{marts_path.stem}."


def remove_stale_publish_files(marts_path: Path) -> list[Path]:
    """Delete the temporary files of a publish that was killed before its rename
    (`.<stem>.<random>.publishing` and its `.wal`). Publishing needs the warehouse open
    read-write, which DuckDB grants one process at a time, so no other publish from this
    warehouse can be in progress."""
    removed = []
    if not marts_path.parent.is_dir():
        return removed
    for leftover in marts_path.parent.glob(f"{_publish_prefix(marts_path)}*.publishing*"):
        if leftover.name.endswith((".publishing", ".publishing.wal")) and leftover.is_file():
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def publish_marts(
    warehouse: duckdb.DuckDBPyConnection,
    marts_path: Path,
    full_after_share: float | None = None,
) -> PublishResult:
    """Copy every table of the warehouse's `marts` schema into a new file beside
    `marts_path`, then atomically replace `marts_path` with it. Readers holding the old file
    open keep reading it; a crash before the rename leaves the old file untouched. With
    `full_after_share` (DuckDB builds: the var publish_full_after_patched_share), the new file
    starts as a copy of the published one when `delta_calls` allows it (module docstring)."""
    if marts_path.stem == PUBLISHED_SCHEMA:
        raise ValueError(
            f"{marts_path}: the published file must not be called {PUBLISHED_SCHEMA}.duckdb "
            "(its catalog would clash with the marts schema)"
        )
    marts_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_publish_files(marts_path)
    ensure_publish_state(warehouse)
    tables = [
        row[0]
        for row in warehouse.execute(
            "select table_name from information_schema.tables "
            "where table_schema = ? and table_catalog = current_database() order by table_name",
            [PUBLISHED_SCHEMA],
        ).fetchall()
    ]
    views = _published_views(warehouse)
    delta = (
        None if full_after_share is None else delta_calls(warehouse, marts_path, full_after_share)
    )
    fd, tmp_name = tempfile.mkstemp(
        prefix=_publish_prefix(marts_path), suffix=".publishing", dir=marts_path.parent
    )
    os.close(fd)
    os.unlink(tmp_name)  # DuckDB creates the file itself
    tmp_path = Path(tmp_name)
    try:
        if delta is not None:
            shutil.copyfile(marts_path, tmp_path)
            if not _patch(warehouse, tmp_path, tables, views):
                tmp_path.unlink()
                delta = None
        if delta is None:
            _write_all(warehouse, tmp_path, tables, views)
        counts = _counts(warehouse, tmp_path, tables)
        with tmp_path.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, marts_path)
        _fsync_dir(marts_path.parent)
    finally:
        for leftover in (tmp_path, Path(f"{tmp_path}.wal")):
            if leftover.exists():
                leftover.unlink()
    result = PublishResult(counts, "full" if delta is None else "delta", delta or 0)
    _record_published(warehouse, marts_path, result)
    return result


ATTACHED = "ringledger_publish"


def _published_views(warehouse: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The views of PUBLISHED_VIEWS the warehouse's marts schema holds (a Spark build imports
    them as tables), each with its query: DuckDB stores a view's SQL as
    `CREATE VIEW marts.<name> AS <query>`, its relations as written (dbt's refs without the
    catalog), so the query binds to the tables of whichever file holds the view."""
    views = {}
    for name, sql in warehouse.execute(
        "select view_name, sql from duckdb_views() "
        "where database_name = current_database() and schema_name = ?",
        [PUBLISHED_SCHEMA],
    ).fetchall():
        if name not in PUBLISHED_VIEWS:
            continue
        prefix = f"CREATE VIEW {PUBLISHED_SCHEMA}.{name} AS "
        if not sql.startswith(prefix):
            raise RuntimeError(f"{PUBLISHED_SCHEMA}.{name}: unexpected view definition {sql[:80]!r}")
        views[name] = sql[len(prefix):]
    return views


def _create_views(warehouse: duckdb.DuckDBPyConnection, views: dict[str, str]) -> None:
    for name, query in views.items():
        warehouse.execute(
            f"create or replace view {ATTACHED}.{PUBLISHED_SCHEMA}.{name} as {query}"
        )


def _write_all(
    warehouse: duckdb.DuckDBPyConnection, path: Path, tables: list[str], views: dict[str, str]
) -> None:
    warehouse.execute(f"attach '{path}' as {ATTACHED}")
    try:
        warehouse.execute(f"create schema {ATTACHED}.{PUBLISHED_SCHEMA}")
        for table in tables:
            if table not in views:
                warehouse.execute(
                    f"create table {ATTACHED}.{PUBLISHED_SCHEMA}.{table} as "
                    f"select * from {PUBLISHED_SCHEMA}.{table}"
                )
        _create_views(warehouse, views)
        warehouse.execute(f"checkpoint {ATTACHED}")
    finally:
        warehouse.execute(f"detach {ATTACHED}")


def _relation_types(warehouse: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str]]:
    return warehouse.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_catalog = ? and table_schema = ? order by table_name",
        [catalog, PUBLISHED_SCHEMA],
    ).fetchall()


def _patch(
    warehouse: duckdb.DuckDBPyConnection, path: Path, tables: list[str], views: dict[str, str]
) -> bool:
    """The copy of the published file brought up to the warehouse's marts: False (nothing
    to use) when its relations (names, and which are views) or the patched tables' columns
    differ from what a full publish would write."""
    warehouse.execute(f"attach '{path}' as {ATTACHED}")
    try:
        expected = [(name, "VIEW" if name in views else "BASE TABLE") for name in tables]
        if _relation_types(warehouse, ATTACHED) != expected or DELTA_TABLE not in tables:
            return False
        own = warehouse.execute("select current_database()").fetchone()[0]
        patched = {DELTA_TABLE: (DELTA_KEY, DELTA_CALLS)}
        if EPISODES_TABLE in tables:
            patched[EPISODES_TABLE] = (EPISODES_KEY, DELTA_EPISODES)
        for table in patched:
            if _columns(warehouse, ATTACHED, table) != _columns(warehouse, own, table):
                return False
        target = f"{ATTACHED}.{PUBLISHED_SCHEMA}"
        warehouse.execute("begin")
        try:
            for table, (key, delta_keys) in patched.items():
                changed = f"(select {key} from {delta_keys})"
                gone = ""
                if table == EPISODES_TABLE:
                    # an episode the warehouse no longer holds (merged into another, or its
                    # calls gone) has no row left to name it: found by its id
                    gone = (
                        f" or not exists (select 1 from {PUBLISHED_SCHEMA}.{table} as current "
                        f"where current.{key} = published.{key})"
                    )
                warehouse.execute(
                    f"delete from {target}.{table} as published "
                    f"where {key} in {changed}{gone}"
                )
                warehouse.execute(
                    f"insert into {target}.{table} by name select * from "
                    f"{PUBLISHED_SCHEMA}.{table} where {key} in {changed}"
                )
            for table in tables:
                if table not in patched and table not in views:
                    warehouse.execute(
                        f"create or replace table {target}.{table} as "
                        f"select * from {PUBLISHED_SCHEMA}.{table}"
                    )
            # the views as the warehouse defines them now (a few statements)
            _create_views(warehouse, views)
            warehouse.execute("commit")
        except BaseException:
            warehouse.execute("rollback")
            raise
        warehouse.execute(f"checkpoint {ATTACHED}")
        return True
    finally:
        warehouse.execute(f"detach {ATTACHED}")


def _counts(warehouse: duckdb.DuckDBPyConnection, path: Path, tables: list[str]) -> dict[str, int]:
    warehouse.execute(f"attach '{path}' as {ATTACHED} (read_only)")
    try:
        return {
            table: warehouse.execute(
                f"select count(*) from {ATTACHED}.{PUBLISHED_SCHEMA}.{table}"
            ).fetchone()[0]
            for table in tables
        }
    finally:
        warehouse.execute(f"detach {ATTACHED}")


def quality_json_path(marts_path: Path) -> Path:
    return marts_path.parent / f"{marts_path.stem}.quality.json"


def write_quality_json(marts_path: Path, payload: dict[str, Any]) -> Path:
    """Atomically write the latest run's gate results beside the published file."""
    target = quality_json_path(marts_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{target.name}.*"):  # of a run killed mid-write
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return target

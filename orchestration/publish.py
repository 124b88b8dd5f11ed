"""Publication of the marts to the read-only file BI tools open (atomic replace)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import duckdb

PUBLISHED_SCHEMA = "marts"


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


def publish_marts(warehouse: duckdb.DuckDBPyConnection, marts_path: Path) -> dict[str, int]:
    """Copy every table of the warehouse's `marts` schema into a new file beside
    `marts_path`, then atomically replace `marts_path` with it. Readers holding the old file
    open keep reading it; a crash before the rename leaves the old file untouched."""
    if marts_path.stem == PUBLISHED_SCHEMA:
        raise ValueError(
            f"{marts_path}: the published file must not be called {PUBLISHED_SCHEMA}.duckdb "
            "(its catalog would clash with the marts schema)"
        )
    marts_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_publish_files(marts_path)
    tables = [
        row[0]
        for row in warehouse.execute(
            "select table_name from information_schema.tables "
            "where table_schema = ? and table_catalog = current_database() order by table_name",
            [PUBLISHED_SCHEMA],
        ).fetchall()
    ]
    fd, tmp_name = tempfile.mkstemp(
        prefix=_publish_prefix(marts_path), suffix=".publishing", dir=marts_path.parent
    )
    os.close(fd)
    os.unlink(tmp_name)  # DuckDB creates the file itself
    tmp_path = Path(tmp_name)
    counts: dict[str, int] = {}
    try:
        warehouse.execute(f"attach '{tmp_path}' as ringledger_publish")
        try:
            warehouse.execute(f"create schema ringledger_publish.{PUBLISHED_SCHEMA}")
            for table in tables:
                warehouse.execute(
                    f"create table ringledger_publish.{PUBLISHED_SCHEMA}.{table} as "
                    f"select * from {PUBLISHED_SCHEMA}.{table}"
                )
                counts[table] = warehouse.execute(
                    f"select count(*) from ringledger_publish.{PUBLISHED_SCHEMA}.{table}"
                ).fetchone()[0]
            warehouse.execute("checkpoint ringledger_publish")
        finally:
            warehouse.execute("detach ringledger_publish")
        with tmp_path.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, marts_path)
        _fsync_dir(marts_path.parent)
    finally:
        for leftover in (tmp_path, Path(f"{tmp_path}.wal")):
            if leftover.exists():
                leftover.unlink()
    return counts


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

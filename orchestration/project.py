"""Paths of the project, found from this file (never from the current directory)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_dbt import DbtProject

REPO_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = REPO_ROOT / "seeds"
DBT_PROJECT_FILE = REPO_ROOT / "dbt_project.yml"

# `dagster dev` from a non-activated venv: find dbt beside this Python, not only on PATH.
_VENV_BIN = str(Path(sys.executable).parent)
if _VENV_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")

dbt_project = DbtProject(project_dir=REPO_ROOT, profiles_dir=REPO_ROOT)
dbt_project.prepare_if_dev()


def landing_dir() -> Path:
    return Path(os.environ.get("RINGLEDGER_LANDING_DIR", REPO_ROOT / "data" / "landing"))


def warehouse_path() -> Path:
    return Path(os.environ.get("RINGLEDGER_WAREHOUSE", REPO_ROOT / "data" / "warehouse.duckdb"))


def state_dir(warehouse: Path) -> Path:
    """Working files of a warehouse's deployment (merged seeds, Spark's catalog, dbt's
    partial-parse state), beside the warehouse file."""
    return warehouse.parent / f".{warehouse.stem}.state"


def marts_path() -> Path:
    explicit = os.environ.get("RINGLEDGER_MARTS")
    if explicit:
        return Path(explicit)
    return warehouse_path().parent / "ringledger.duckdb"


def config_dir() -> Path | None:
    value = os.environ.get("RINGLEDGER_CONFIG_DIR")
    return Path(value) if value else None

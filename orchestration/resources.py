"""Dagster resources: where the data lives, the configuration in force, and dbt."""

from __future__ import annotations

import json
import os
import shutil
import sys
from functools import cached_property
from importlib import metadata
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource
from packaging import version

from orchestration import project
from orchestration.config import MEMORY_LIMIT_ENV, Config, load_config, memory_limit


class WarehouseResource(ConfigurableResource):
    """Paths of one ringledger deployment; defaults from the RINGLEDGER_* environment."""

    landing_dir: str = ""
    warehouse: str = ""
    marts: str = ""
    config_dir: str = ""
    # dbt engine: duckdb or spark; empty means $RINGLEDGER_ENGINE, else duckdb
    engine: str = ""

    @property
    def engine_name(self) -> str:
        return (self.engine or os.environ.get("RINGLEDGER_ENGINE", "") or "duckdb").lower()

    # -- paths ----------------------------------------------------------------------
    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir or project.landing_dir()).resolve()

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse or project.warehouse_path()).resolve()

    @property
    def marts_path(self) -> Path:
        if self.marts:
            return Path(self.marts).resolve()
        if self.warehouse:
            return self.warehouse_path.parent / "ringledger.duckdb"
        return project.marts_path().resolve()

    @property
    def config_path(self) -> Path | None:
        value = self.config_dir or os.environ.get("RINGLEDGER_CONFIG_DIR", "")
        return Path(value).resolve() if value else None

    @property
    def state_dir(self) -> Path:
        """Working files of the deployment (merged seeds), beside the warehouse."""
        return project.state_dir(self.warehouse_path)

    @property
    def spark_dir(self) -> Path:
        """The Spark engine's files for this warehouse (tables, Derby metastore, Parquet
        hand-over): absolute, so every JVM of every run finds the same catalog."""
        return self.state_dir / "spark"

    # -- configuration --------------------------------------------------------------
    def load_config(self) -> Config:
        return load_config(self.config_path)

    def dbt_environment(self, config: Config) -> dict[str, str]:
        """Environment for a dbt invocation: the warehouse file and, with a user's
        configuration, the merged seed directory."""
        env = {
            "RINGLEDGER_WAREHOUSE": str(self.warehouse_path),
            "RINGLEDGER_ENGINE": self.engine_name,
            MEMORY_LIMIT_ENV: memory_limit(),
        }
        if self.engine_name == "spark":
            self.spark_dir.mkdir(parents=True, exist_ok=True)
            env["RINGLEDGER_SPARK_DIR"] = str(self.spark_dir)
        if config.config_dir is not None:
            seed_dir = config.write_seed_dir(self.state_dir / "seeds")
            # relative to the dbt project: with an absolute seed path dbt writes the compiled
            # tests of seeds/_seeds.yml under the yml file itself (NotADirectoryError)
            env["RINGLEDGER_SEED_DIR"] = os.path.relpath(seed_dir, project.REPO_ROOT)
        return env

    def dbt_vars_arg(self, config: Config) -> list[str]:
        return ["--vars", json.dumps(config.dbt_vars())]

    # -- connections ----------------------------------------------------------------
    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        self.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(
            str(self.warehouse_path),
            read_only=read_only,
            config={"memory_limit": memory_limit()},
        )
        con.execute("set TimeZone = 'UTC'")
        return con


def dbt_executable() -> str:
    """dbt from the same environment as this Python (works without an activated venv)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


class RingledgerDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource without two start-up costs it pays on every `dbt.cli`
    (~9 s of a day's run on the benchmark machine, measured with cProfile):

    - the installed dbt's version, which it asks a `dbt --version` child for (~1.8 s each
      time), is read from this environment's package metadata when the dbt executable is
      this environment's (`dbt_executable()`, or the launcher of the run's dbt fork server,
      which runs it); another executable is still asked;
    - no dbt adapter handle in this process (~2.6 s each time: it loads and parses every
      macro of the project). dagster-dbt uses it only for `fetch_row_counts()` and
      `fetch_column_metadata()`, which ringledger does not call (they would open the DuckDB
      file while dbt holds its write lock)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        from orchestration.dbt_zygote import is_launcher

        executable = Path(self.dbt_executable)
        if executable.parent == Path(sys.executable).parent or is_launcher(executable):
            return version.parse(metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - dagster-dbt's signature
        return None


def dbt_resource(executable: str | None = None) -> DbtCliResource:
    """`executable`: another dbt to run (`run_pipeline` passes its dbt fork server's launcher,
    orchestration/dbt_zygote.py); this environment's dbt by default."""
    return RingledgerDbtCliResource(
        project_dir=project.dbt_project,
        profiles_dir=str(project.REPO_ROOT),
        dbt_executable=executable or dbt_executable(),
    )

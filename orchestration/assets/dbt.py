"""The dbt project as Dagster assets, in two selections around the data-quality gates.

`ringledger_dbt_models` builds the seeds, staging and intermediate models (what the gates
read); `ringledger_dbt_marts` builds the marts. Blocking dbt tests do not carry across
`@dbt_assets` definitions (dagster issues #19821, #25112), so the structural tests of the
first selection fail its step (`dbt build` exits non-zero on an error-severity test), which
stops the marts.

Neither build runs the dbt unit tests: they check the models' logic on fixed rows, not the
data, so a run does not need them; `tests/test_dbt_unit.py` runs every one of them (`make test`).
"""

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetDep, AssetExecutionContext, AssetKey, AssetSpec
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from orchestration import incremental, project
from orchestration.project import dbt_project
from orchestration.publish import note_marts_built
from orchestration.resources import WarehouseResource

# Key of the gates asset (orchestration/checks.py), upstream of every mart.
GATES_KEY = AssetKey("data_quality_gates")

MODELS_SELECTION = "resource_type:seed path:models/staging path:models/intermediate"
# Tests declared on the marts but touching a seed (relationships) would be picked up by the
# first selection through eager indirect selection: exclude them there by path.
MODELS_EXCLUSION = "path:models/marts path:models/restricted"
MARTS_SELECTION = "path:models/marts path:models/restricted"
# dbt unit tests (resource type unit_test) stay out of the pipeline's builds. Passed as
# --exclude-resource-type rather than in the selections above: dagster-dbt replaces the
# decorator's select/exclude by explicit node paths when a run materializes a subset of the
# assets (and dbt then picks the selected models' unit tests again), whereas this flag reaches
# dbt unchanged in every case.
BUILD_EXCLUDED_RESOURCE_TYPES = ("unit_test",)
# The builds do not write manifest.json and run_results.json: Dagster takes each node's result
# from dbt's structured log, and serializing the two artifacts cost ~2.3 s of each build
# (docs/benchmarks.md). RINGLEDGER_DBT_ARTIFACTS=1 writes them again (for tools that read
# them); `dbt build` run by hand writes them as usual.
ARTIFACTS_ENV = "RINGLEDGER_DBT_ARTIFACTS"
# dagster-dbt reads dbt's events as JSON lines on stdout (DBT_LOG_FORMAT=json, info level);
# the file log (target/<op>-<run>-<id>/dbt.log, debug level: every SQL statement and its
# timing) is written as plain text in dbt's "debug" layout (microsecond timestamps, level,
# thread), without colour codes (--no-use-colors: in the messages too). As JSON it made dbt
# serialize each of the ~3,000 debug events of a build through protobuf: ~0.4 s of CPU per
# run's builds (docs/benchmarks.md, "Seventeenth session"), for a file people read.
FILE_LOG_ARGS = ("--log-format-file", "debug", "--no-use-colors")
# dagster-dbt gives every invocation its own target directory (`target/<op>-<run>-<id>/`,
# ~2-6 MB: the invocation's dbt.log, compiled SQL, partial-parse state). Each build removes
# those of its op beyond the KEPT_TARGET_DIRS newest, so a daily pipeline does not fill the
# disk; never one active in the last PRUNE_IDLE_SECONDS (another process's build may still be
# writing it: runs on other warehouses from the same checkout, the test suite).
KEPT_TARGET_DIRS = 5
PRUNE_IDLE_SECONDS = 3600


class RingledgerTranslator(DagsterDbtTranslator):
    """Seeds, staging, intermediate and marts become Dagster groups of the same names."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "seeds"
        fqn = dbt_resource_props.get("fqn", [])
        for layer in ("staging", "intermediate", "marts"):
            if layer in fqn:
                return layer
        return super().get_group_name(dbt_resource_props)

    def get_asset_spec(self, manifest, unique_id, project) -> AssetSpec:
        """Every mart waits for the data-quality gates (orchestration/checks.py)."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or {}
        if node.get("resource_type") == "model" and "marts" in node.get("fqn", []):
            spec = spec.merge_attributes(deps=[AssetDep(GATES_KEY)])
        return spec


translator = RingledgerTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def _build_plan(warehouse: WarehouseResource, env: dict[str, str], vars_json: str):
    """Full refresh or incremental for this build (orchestration/incremental.py)."""
    seed_dir = env.get("RINGLEDGER_SEED_DIR")
    current = incremental.fingerprint(
        vars_json,
        project.REPO_ROOT / seed_dir if seed_dir else None,
        warehouse.engine_name,
    )
    with warehouse.connect() as con:
        return incremental.plan_build(con, current)


def _last_activity(path: Path) -> float:
    log = path / "dbt.log"
    times = [path.stat().st_mtime]
    if log.exists():
        times.append(log.stat().st_mtime)
    return max(times)


def prune_target_dirs(
    op_name: str, keep: int = KEPT_TARGET_DIRS, now: float | None = None
) -> list[Path]:
    """Remove the per-invocation target directories of `op_name` beyond the `keep` most
    recently active ones, unless active within PRUNE_IDLE_SECONDS. Returns those removed."""
    target = project.REPO_ROOT / os.environ.get("DBT_TARGET_PATH", "target")
    now = time.time() if now is None else now
    dirs = [path for path in target.glob(f"{op_name}-*") if path.is_dir()]
    activity = {path: _last_activity(path) for path in dirs}
    dirs.sort(key=activity.__getitem__, reverse=True)
    removed = [path for path in dirs[keep:] if now - activity[path] > PRUNE_IDLE_SECONDS]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def build_args(vars_arg: list[str]) -> list[str]:
    """`dbt build` arguments of the pipeline's builds (--full-refresh added by the plan)."""
    args = ["build", *vars_arg, *FILE_LOG_ARGS]
    for resource_type in BUILD_EXCLUDED_RESOURCE_TYPES:
        args += ["--exclude-resource-type", resource_type]
    if os.environ.get(ARTIFACTS_ENV, "") != "1":
        args.append("--no-write-json")
    return args


def _dbt_build(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    layer: str,
):
    config = warehouse.load_config()
    os.environ.pop("RINGLEDGER_SEED_DIR", None)
    env = warehouse.dbt_environment(config)
    os.environ.update(env)
    vars_arg = warehouse.dbt_vars_arg(config)
    args = build_args(vars_arg)
    # the invocation about to start makes the KEPT_TARGET_DIRS-th
    prune_target_dirs(context.op_execution_context.op.name, keep=KEPT_TARGET_DIRS - 1)
    if warehouse.engine_name != "spark":
        plan = _build_plan(warehouse, env, vars_arg[-1])  # ["--vars", JSON]
        context.log.info("dbt build of the %s: %s", layer, plan.mode)
        if plan.full_refresh:
            args.append("--full-refresh")
        # no .fetch_row_counts(): it opens the DuckDB file while dbt holds the write lock
        yield from dbt.cli(args, context=context).stream()
        # reached only when every node succeeded (a failed node raises above); a build of a
        # subset of the assets does not move the watermark, and makes the next publish full.
        # One transaction: a moved watermark always comes with its calls noted for the publish
        with warehouse.connect() as con:
            con.begin()
            try:
                if context.is_subset:
                    note_marts_built(con, incremental=False)
                    if layer == "models":
                        # no complete models build is pending any more: the watermark stays,
                        # and the gates read every row (orchestration/gates.py)
                        incremental.forget_models_built(con)
                elif layer == "models":
                    incremental.record_models_built(con, plan)
                else:
                    # the watermark this build started from: the episodes written since
                    since = incremental.built_through(con)
                    complete = incremental.record_marts_built(con, plan)
                    note_marts_built(
                        con,
                        incremental=complete and not plan.full_refresh,
                        episodes_since=since,
                    )
                con.commit()
            except BaseException:
                con.rollback()
                raise
        return
    # Spark: dbt's on-run-end hook exports what it built; copy that into DuckDB, where the
    # gates and publication read (orchestration/spark.py), also after a failed test
    from orchestration.spark import clear_exports, import_exports

    clear_exports(warehouse.spark_dir)
    with warehouse.connect() as con:
        note_marts_built(con, incremental=False)  # the next publish is a full one
    try:
        yield from dbt.cli(args, context=context).stream()
    finally:
        with warehouse.connect() as con:
            imported = import_exports(con, warehouse.spark_dir)
        context.log.info("copied %s relations built on Spark into DuckDB", len(imported))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    select=MODELS_SELECTION,
    exclude=MODELS_EXCLUSION,
    name="ringledger_dbt_models",
)
def ringledger_dbt_models(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    yield from _dbt_build(context, dbt, warehouse, "models")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    select=MARTS_SELECTION,
    name="ringledger_dbt_marts",
)
def ringledger_dbt_marts(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    yield from _dbt_build(context, dbt, warehouse, "marts")

"""The job that materializes everything, one step at a time (single DuckDB writer)."""

from dagster import AssetSelection, define_asset_job, in_process_executor

# Runs carrying this tag are limited to one at a time by the instance's run coordinator
# (dagster.yaml); the CLI adds a lock file on the warehouse (exit code 5 when held).
WAREHOUSE_TAG = {"ringledger/warehouse": "writer"}

everything_job = define_asset_job(
    name="ringledger_everything",
    selection=AssetSelection.all(),
    executor_def=in_process_executor,
    tags=WAREHOUSE_TAG,
    description="Ingest the landing directory, build the dbt models, gate, build and publish the marts.",
)


def ingest_only_definitions():
    """`ringledger run`'s first Dagster run: the ingest alone (`ringledger_ingest`). Its asset
    needs no dbt manifest, so it runs while the run's dbt parse is under way (runner.py)."""
    from dagster import Definitions

    from orchestration.assets.ingest import ingest_landing_files
    from orchestration.resources import WarehouseResource

    ingest_job = define_asset_job(
        name="ringledger_ingest",
        selection=AssetSelection.assets(ingest_landing_files),
        executor_def=in_process_executor,
        tags=WAREHOUSE_TAG,
    )
    return Definitions(
        assets=[ingest_landing_files],
        jobs=[ingest_job],
        resources={"warehouse": WarehouseResource()},
    )


def after_ingest_definitions(defs):
    """`ringledger run`'s second Dagster run: every step of `ringledger_everything` but the
    ingest (`ringledger_after_ingest`), over the code location's assets and checks."""
    from orchestration.assets.ingest import ingest_landing_files

    after_ingest = define_asset_job(
        name="ringledger_after_ingest",
        selection=AssetSelection.all() - AssetSelection.assets(ingest_landing_files),
        executor_def=in_process_executor,
        tags=WAREHOUSE_TAG,
    )
    from dagster import Definitions

    return Definitions(
        assets=list(defs.assets or []),
        asset_checks=list(defs.asset_checks or []),
        jobs=[after_ingest],
        resources=dict(defs.resources or {}),
    )

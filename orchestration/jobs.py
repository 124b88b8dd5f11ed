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

"""The jobs that materialize the assets, one step at a time (single DuckDB writer)."""

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

# Runs carrying this tag are limited to one at a time by the instance's run coordinator
# (dagster.yaml); the CLI adds a lock file on the warehouse (exit code 5 when held).
WAREHOUSE_TAG = {"ringledger/warehouse": "writer"}


def _writer_job(name: str, selection: AssetSelection, description: str | None = None):
    """A job over `selection` that writes the warehouse: in process, one run at a time."""
    return define_asset_job(
        name=name,
        selection=selection,
        executor_def=in_process_executor,
        tags=WAREHOUSE_TAG,
        description=description,
    )


everything_job = _writer_job(
    "ringledger_everything",
    AssetSelection.all(),
    "Ingest the landing directory, build the dbt models, gate, build and publish the marts.",
)


def ingest_only_definitions() -> Definitions:
    """`ringledger run`'s first Dagster run: the ingest alone (`ringledger_ingest`). Its asset
    needs no dbt manifest, so it runs while the run's dbt parse is under way (runner.py)."""
    from orchestration.assets.ingest import ingest_landing_files
    from orchestration.resources import WarehouseResource

    return Definitions(
        assets=[ingest_landing_files],
        jobs=[_writer_job("ringledger_ingest", AssetSelection.assets(ingest_landing_files))],
        resources={"warehouse": WarehouseResource()},
    )


def after_ingest_definitions(defs: Definitions) -> Definitions:
    """`ringledger run`'s second Dagster run: every step of `ringledger_everything` but the
    ingest (`ringledger_after_ingest`), over the code location's assets and checks."""
    from orchestration.assets.ingest import ingest_landing_files

    rest = AssetSelection.all() - AssetSelection.assets(ingest_landing_files)
    return Definitions(
        assets=list(defs.assets or []),
        asset_checks=list(defs.asset_checks or []),
        jobs=[_writer_job("ringledger_after_ingest", rest)],
        resources=dict(defs.resources or {}),
    )

"""The Dagster code location: `dagster dev` at the repository root loads this module."""

from dagster import Definitions

from orchestration.assets.dbt import ringledger_dbt_marts, ringledger_dbt_models
from orchestration.assets.ingest import ingest_landing_files
from orchestration.assets.publish import published_marts
from orchestration.assets.report import weekly_report
from orchestration.checks import data_quality_gates
from orchestration.jobs import everything_job
from orchestration.resources import WarehouseResource, dbt_resource
from orchestration.schedules import daily_schedule
from orchestration.sensors import landing_files_sensor

defs = Definitions(
    assets=[
        ingest_landing_files,
        ringledger_dbt_models,
        data_quality_gates,
        ringledger_dbt_marts,
        published_marts,
        weekly_report,
    ],
    jobs=[everything_job],
    schedules=[daily_schedule],
    sensors=[landing_files_sensor],
    resources={"warehouse": WarehouseResource(), "dbt": dbt_resource()},
)

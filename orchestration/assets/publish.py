"""The published marts file: only after the marts (and so the gates before them) succeed."""


from dagster import AssetExecutionContext, MaterializeResult, asset

from orchestration.assets.dbt import ringledger_dbt_marts
from orchestration.publish import publish_marts
from orchestration.resources import WarehouseResource


@asset(
    key=["published_marts"],
    deps=list(ringledger_dbt_marts.keys),
    group_name="publish",
    description=(
        "The marts schema copied to the read-only file BI tools open (default "
        "data/ringledger.duckdb), replaced atomically so readers never see a half-written table."
    ),
)
def published_marts(context: AssetExecutionContext, warehouse: WarehouseResource):
    with warehouse.connect() as con:
        counts = publish_marts(con, warehouse.marts_path)
    context.log.info("published %s tables to %s", len(counts), warehouse.marts_path)
    return MaterializeResult(
        metadata={
            "path": str(warehouse.marts_path),
            "tables": len(counts),
            **{f"rows.{table}": rows for table, rows in counts.items()},
        }
    )

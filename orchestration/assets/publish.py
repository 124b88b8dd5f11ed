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
    # a delta (the published file patched) only after DuckDB builds: a Spark build makes
    # the next publish full (orchestration/publish.py)
    share = (
        float(warehouse.load_config().vars["publish_full_after_patched_share"])
        if warehouse.engine_name == "duckdb"
        else None
    )
    with warehouse.connect() as con:
        result = publish_marts(con, warehouse.marts_path, full_after_share=share)
    counts = result.counts
    context.log.info(
        "published %s tables to %s (%s%s)",
        len(counts),
        warehouse.marts_path,
        result.mode,
        f": {result.delta_calls} calls patched" if result.mode == "delta" else "",
    )
    return MaterializeResult(
        metadata={
            "path": str(warehouse.marts_path),
            "tables": len(counts),
            "mode": result.mode,
            "delta_calls": result.delta_calls,
            **{f"rows.{table}": rows for table, rows in counts.items()},
        }
    )

"""Ingest: the landing directory into the warehouse's `raw` schema (one multi-asset)."""


from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from orchestration.calendar import build_site_calendar
from orchestration.gates import prefetch_great_expectations
from orchestration.ingest import ingest_landing, resolve_hash_key
from orchestration.resources import WarehouseResource

# Raw tables the dbt sources read (asset keys ["raw", <table>] match dagster-dbt's default
# keys for source('raw', <table>)), plus the ledger and rejects tables.
RAW_TABLES: dict[str, str] = {
    "telephony_legs": "Call legs from every telephony export, text plus normalized columns.",
    "asterisk_queue_events": "Asterisk queue_log events (callid, queue, event, data).",
    "crm_contacts": "CRM contacts export rows.",
    "crm_opportunities": "CRM opportunities export rows.",
    "crm_activities": "CRM-logged call activities.",
    "crm_form_submissions": "Web form submissions.",
    "marketing_tracking_numbers": "Tracking numbers and campaign windows.",
    "crm_contact_identities": "Contacts merged by shared numbers (union-find at load).",
    "site_calendar": "Open/closed segments per site in UTC with cumulative open seconds.",
    "load_ledger": "One row per file load: hash, counts, status, reason.",
    "rejected_rows": "Rows rejected at ingest with their reason.",
}


@multi_asset(
    specs=[
        AssetSpec(key=["raw", table], description=description, group_name="ingest")
        for table, description in RAW_TABLES.items()
    ],
    can_subset=False,
    name="ingest_landing_files",
)
def ingest_landing_files(context: AssetExecutionContext, warehouse: WarehouseResource):
    """Load every new or changed file of the landing directory into `raw`."""
    # the gates' library loads on the idle core meanwhile (in-process runs: ringledger run)
    prefetch_great_expectations()
    config = warehouse.load_config()
    hash_key = resolve_hash_key(warehouse.warehouse_path)
    with warehouse.connect() as con:
        summary = ingest_landing(con, warehouse.landing_path, config, hash_key)
        # the business calendar follows the seeds in force and the dates loaded
        build_site_calendar(con, config)
        if warehouse.engine_name == "spark":
            # Parquet copies where dbt on Spark reads `raw` (macros/spark_handover.sql)
            from orchestration.spark import export_raw_tables

            export_raw_tables(con, warehouse.spark_dir)
        counts = {
            table: con.execute(f"select count(*) from raw.{table}").fetchone()[0]
            for table in RAW_TABLES
        }
    refused = [f"{name}: {reason}" for name, reason in summary.files_refused]
    for line in refused:
        context.log.warning("refused %s", line)
    context.log.info(
        "ingest: %s files seen, %s loaded, %s unchanged, %s refused; rows read %s, loaded %s, "
        "rejected %s",
        summary.files_seen,
        summary.files_loaded,
        summary.files_skipped_unchanged,
        len(summary.files_refused),
        summary.rows_read,
        summary.rows_loaded,
        summary.rows_rejected,
    )
    for table in RAW_TABLES:
        metadata = {"dagster/row_count": counts[table]}
        if table == "load_ledger":
            metadata.update(
                {
                    "files_seen": summary.files_seen,
                    "files_loaded": summary.files_loaded,
                    "files_refused": len(summary.files_refused),
                    "refused": "\n".join(refused) or "none",
                    "rows_read": summary.rows_read,
                    "rows_loaded": summary.rows_loaded,
                    "rows_rejected": summary.rows_rejected,
                }
            )
        yield MaterializeResult(asset_key=["raw", table], metadata=metadata)

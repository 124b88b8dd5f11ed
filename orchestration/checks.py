"""The data-quality gates as Dagster assets checks that block the marts.

`data_quality_gates` sits between the two dbt selections: it reads the staging and
intermediate models, runs every gate (Great Expectations, orchestration/gates.py), records
the results in `marts.data_quality_results` and `<published stem>.quality.json`, and reports
one blocking asset check per gate. A failed check fails the step, so the marts selection (which
depends on this asset) and the publication are skipped and the published file stays as it was.
"""


from datetime import datetime, timezone

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    asset,
)
from dagster_dbt import get_asset_key_for_model

from orchestration.assets.dbt import GATES_KEY, ringledger_dbt_models
from orchestration.gates import GATES, record_results, run_gates
from orchestration.publish import write_quality_json
from orchestration.resources import WarehouseResource

GATE_DESCRIPTIONS = {
    "clock_sync": "CRM vs PBX clock: median absolute skew per source and day within tolerance.",
    "timezone_offset": "No whole-hours offset between CRM and PBX clocks (a time-zone error).",
    "future_timestamps": "No call leg starts after the run's start time.",
    "number_normalization": "Share of inbound callers with a valid E.164 number.",
    "crm_number_normalization": "Share of CRM contacts whose every phone is valid.",
    "deduplication": "Legs unique on (source_system, call_id); one identity per number.",
    "tracking_numbers": "Every tracked inbound call maps to exactly one campaign window.",
}

# The models the gates read (they must be built, and pass their tests, first).
GATE_INPUT_MODELS = (
    "stg_telephony__legs",
    "stg_crm__activities",
    "stg_crm__contacts",
    "stg_crm__contact_identities",
    "int_legs_deduplicated",
    "int_calls",
    "int_calls_classified",
    "int_tracking_numbers",
    "int_crm_activity_calls_linked",
)


def _run_started_at(context: AssetExecutionContext) -> datetime:
    stats = context.instance.get_run_stats(context.run.run_id)
    started = stats.start_time if stats and stats.start_time else None
    if started is None:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    return datetime.fromtimestamp(started, tz=timezone.utc).replace(tzinfo=None)


@asset(
    key=GATES_KEY,
    deps=[get_asset_key_for_model([ringledger_dbt_models], m) for m in GATE_INPUT_MODELS],
    group_name="gates",
    check_specs=[
        AssetCheckSpec(name=gate, asset=GATES_KEY, blocking=True, description=GATE_DESCRIPTIONS[gate])
        for gate in GATES
    ],
    description="Data-quality gates (metrics.md section 7); a failed gate blocks the marts.",
)
def data_quality_gates(context: AssetExecutionContext, warehouse: WarehouseResource):
    config = warehouse.load_config()
    run_started_at = _run_started_at(context)
    checked_at = datetime.now(timezone.utc).replace(tzinfo=None)
    with warehouse.connect() as con:
        results = run_gates(con, config, run_started_at)
        record_results(con, context.run.run_id, checked_at, results)
    write_quality_json(
        warehouse.marts_path,
        {
            "run_id": context.run.run_id,
            "checked_at": checked_at.isoformat(),
            "passed": all(r.passed for r in results),
            "gates": [
                {
                    "gate": r.gate,
                    "passed": r.passed,
                    "measured_value": r.measured_value,
                    "threshold": r.threshold,
                    "detail": r.detail,
                }
                for r in results
            ],
        },
    )
    for r in results:
        (context.log.info if r.passed else context.log.error)(
            "gate %s %s: %s%s",
            r.gate,
            "passed" if r.passed else "FAILED",
            r.detail,
            f" (read {r.scope})" if r.scope else "",
        )
    yield MaterializeResult(
        metadata={
            "passed": all(r.passed for r in results),
            "failed_gates": ", ".join(r.gate for r in results if not r.passed) or "none",
        }
    )
    for r in results:
        yield AssetCheckResult(
            check_name=r.gate,
            asset_key=GATES_KEY,
            passed=r.passed,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "measured_value": r.measured_text(),
                "threshold": r.threshold,
                "detail": r.detail,
                "failing_examples_masked": ", ".join(r.examples) or "none",
                "frame_rows": r.frame_rows,
                "rows_read": r.scope or "every row",
            },
        )

"""The weekly report as a Dagster asset, built after publication from the published file."""

import base64

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from orchestration.resources import WarehouseResource

REPORT_DIR_NAME = "report"


@asset(
    key=["weekly_report"],
    deps=[AssetKey(["published_marts"])],
    group_name="report",
    description=(
        "Weekly report (offline HTML page + PNG charts) built from the published marts file "
        "only, read-only, into `<published file dir>/report/`: high-intent misses, callback "
        "delay percentiles, completion vs contact, conversion by delay bucket (the cliff), "
        "revenue at risk, week-over-week summary and the latest run's gates."
    ),
)
def weekly_report(context: AssetExecutionContext, warehouse: WarehouseResource):
    from orchestration.report import ReportError, build_report
    from orchestration.report.build import chart_png
    from orchestration.report.fmt import instant

    marts_path = warehouse.marts_path
    out_dir = marts_path.parent / REPORT_DIR_NAME
    try:
        result = build_report(marts_path, out_dir, progress=context.log.debug)
    except ReportError as error:
        # nothing to chart yet (an empty landing directory publishes empty marts)
        context.log.warning("weekly report not built: %s", error)
        return MaterializeResult(metadata={"status": f"not built: {error}"})
    metadata = {
        "report": MetadataValue.path(str(result.html_path)),
        "as_of": instant(result.data.as_of),
        "weeks": len(result.data.week_starts),
        "summary": MetadataValue.md("\n".join(f"- {line}" for line in result.summary.headline)),
    }
    for chart in result.charts:
        # a smaller rendering than the PNG file keeps the event log light
        encoded = base64.b64encode(chart_png(chart.spec, scale=1.0)).decode("ascii")
        metadata[f"chart.{chart.name}"] = MetadataValue.md(
            f"**{chart.title}**\n\n![{chart.title}](data:image/png;base64,{encoded})"
        )
        metadata[f"png.{chart.name}"] = MetadataValue.path(str(result.png_paths[chart.name]))
    quality = result.data.quality
    if quality.found:
        metadata["latest_run_gates"] = (
            "passed" if quality.passed else
            "FAILED: " + ", ".join(g["gate"] for g in quality.failed_gates)
        )
    context.log.info("weekly report written to %s", result.html_path)
    return MaterializeResult(metadata=metadata)

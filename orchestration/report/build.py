"""Build the weekly report: HTML page plus one PNG per chart, into an output directory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.report import fmt
from orchestration.report.charts import Chart, build_charts
from orchestration.report.data import ReportData, load_report_data
from orchestration.report.page import render_page
from orchestration.report.summary import Summary, build_summary

REPORT_FILE = "weekly_report.html"


@dataclass
class ReportResult:
    html_path: Path
    png_paths: dict[str, Path]
    charts: list[Chart]
    summary: Summary
    data: ReportData
    cliff: dict | None = None
    warnings: list[str] = field(default_factory=list)


def _atomic_write(path: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, path)


def chart_png(spec: dict, scale: float = 2.0) -> bytes:
    import vl_convert as vlc

    return vlc.vegalite_to_png(spec, scale=scale)


def build_report(
    marts_path: Path,
    out_dir: Path,
    weeks: int = 12,
    currency: str = fmt.CURRENCY,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    """Read the published marts (read-only), draw the charts, write the page and the PNGs."""
    step = progress or (lambda _message: None)
    step("reading the published marts")
    data = load_report_data(Path(marts_path), weeks=weeks)
    charts, cliff = build_charts(data, currency)
    summary = build_summary(data, cliff, currency)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png_paths: dict[str, Path] = {}
    for chart in charts:
        step(f"rendering {chart.name}.png")
        target = out_dir / f"{chart.name}.png"
        _atomic_write(target, chart_png(chart.spec))
        png_paths[chart.name] = target
    step("writing the page")
    html = render_page(data, summary, charts, {k: v.name for k, v in png_paths.items()})
    html_path = out_dir / REPORT_FILE
    _atomic_write(html_path, html.encode("utf-8"))
    return ReportResult(
        html_path=html_path,
        png_paths=png_paths,
        charts=charts,
        summary=summary,
        data=data,
        cliff=cliff,
    )

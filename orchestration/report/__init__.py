"""The weekly report: charts and a summary from the published marts (never the warehouse)."""

from orchestration.report.build import REPORT_FILE, ReportResult, build_report
from orchestration.report.data import ReportError, load_report_data

__all__ = ["REPORT_FILE", "ReportError", "ReportResult", "build_report", "load_report_data"]

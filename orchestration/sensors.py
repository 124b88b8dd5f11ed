"""A sensor on new or changed landing files. It reads the landing directory's listing only
(names, sizes, modification times): it never opens the warehouse, so it cannot contend with a
running writer."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from orchestration.jobs import everything_job
from orchestration.project import landing_dir

LANDING_SUBDIRS = ("telephony", "crm", "marketing")


def landing_fingerprint(root: Path) -> str | None:
    """A digest of the landing files' names, sizes and mtimes; None when there are none."""
    entries: list[str] = []
    for sub in LANDING_SUBDIRS:
        base = root / sub
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.name.startswith(".") or not path.is_file():
                continue
            stat = path.stat()
            entries.append(f"{path.relative_to(root)}\t{stat.st_size}\t{stat.st_mtime_ns}")
    if not entries:
        return None
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


@sensor(
    job=everything_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Requests a run when files in the landing directory are added or changed.",
)
def landing_files_sensor(context: SensorEvaluationContext):
    fingerprint = landing_fingerprint(landing_dir())
    if fingerprint is None:
        return SkipReason(f"no files in {landing_dir()}")
    if fingerprint == context.cursor:
        return SkipReason("landing directory unchanged")
    context.update_cursor(fingerprint)
    return RunRequest(run_key=fingerprint)

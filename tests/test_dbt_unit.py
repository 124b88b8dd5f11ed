"""Every dbt unit test of the project runs here, not in the pipeline's builds.

The pipeline's two `dbt build` steps exclude unit tests (orchestration/assets/dbt.py): they
check the models' rules on fixed rows, whatever the data. dbt needs the relations upstream of
each tested model to exist (it reads their column types), so they run against the session's
pipeline warehouse, with the same --vars as a pipeline run.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from dbt_helpers import run_dbt


def run_unit_tests(warehouse: Path, target: Path) -> subprocess.CompletedProcess:
    return run_dbt(["test", "--select", "test_type:unit"], warehouse, target)


def test_every_dbt_unit_test_runs_and_passes(pipeline_warehouse, dbt_manifest, tmp_path):
    target = tmp_path / "target"
    completed = run_unit_tests(pipeline_warehouse, target)
    output = f"{completed.stdout}\n{completed.stderr}"
    assert completed.returncode == 0, output

    expected = set(json.loads(dbt_manifest.read_text())["unit_tests"])
    assert len(expected) > 0, "the project declares unit tests: the manifest must hold them"
    # the manifest of this very invocation names the same unit tests
    assert set(json.loads((target / "manifest.json").read_text())["unit_tests"]) == expected

    results = json.loads((target / "run_results.json").read_text())["results"]
    # besides the unit tests, run_results lists the project's on-run-start/end hooks only
    assert {r["unique_id"].split(".")[0] for r in results} <= {"unit_test", "operation"}
    unit_results = [r for r in results if r["unique_id"].startswith("unit_test.")]
    ran = {r["unique_id"]: r["status"] for r in unit_results}
    assert len(unit_results) == len(expected)
    assert set(ran) == expected, output
    assert {uid: status for uid, status in ran.items() if status != "pass"} == {}, output

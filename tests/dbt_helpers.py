"""dbt run by hand against one warehouse, as the tests that check dbt's own output need it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from orchestration import project
from orchestration.config import load_config


def run_dbt(args: list[str], warehouse: Path, target: Path) -> subprocess.CompletedProcess:
    """`dbt <args>` on `warehouse` with the same --vars as a pipeline run, its own target and
    log paths (never the shared target/ of other runs); output captured, never raises."""
    env = dict(os.environ)
    env["RINGLEDGER_WAREHOUSE"] = str(warehouse)
    env["RINGLEDGER_ENGINE"] = "duckdb"
    env.pop("RINGLEDGER_SEED_DIR", None)
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            *args,
            "--project-dir",
            str(project.REPO_ROOT),
            "--profiles-dir",
            str(project.REPO_ROOT),
            "--target-path",
            str(target),
            "--log-path",
            str(target),
            "--vars",
            json.dumps(load_config().dbt_vars()),
        ],
        cwd=project.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

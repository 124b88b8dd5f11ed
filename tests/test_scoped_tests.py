"""The per-call `unique` tests read the calls the build recomputed (macros/test_unique_per_call.sql).

On an incremental build the per-call tables keep every untouched call's rows as the build that
tested them left them, so the test reads only the touched calls' rows; on a full refresh it
reads every row. Checked on a copy of the session's pipeline warehouse with two duplicated
`int_calls` rows, one of a call in `int_calls_touched` and one of a call outside it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import duckdb
from dbt_helpers import run_dbt

TEST_NODE = "unique_per_call_int_calls_call_key"


def dbt(command: list[str], warehouse: Path, target: Path) -> subprocess.CompletedProcess:
    return run_dbt([*command, "--select", TEST_NODE], warehouse, target)


def failing_rows(completed: subprocess.CompletedProcess) -> int:
    """The failures dbt reports for the test ("Got N results"), 0 when it passed."""
    output = f"{completed.stdout}\n{completed.stderr}"
    found = re.search(r"Got (\d+) results?, configured to fail", output)
    if found is None:
        assert completed.returncode == 0, output
        assert "PASS=1" in output, output
        return 0
    assert completed.returncode != 0, output
    return int(found.group(1))


def test_unique_per_call_reads_touched_calls_unless_full_refresh(pipeline_warehouse, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy2(pipeline_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        (touched, untouched) = con.execute(
            "select call_id from intermediate.int_calls order by call_key limit 2"
        ).fetchall()
        # the session's build was a full one: nothing touched; mark the first call touched
        con.execute("delete from intermediate.int_calls_touched")
        con.execute("insert into intermediate.int_calls_touched values ('root', ?)", [touched[0]])
        for call_id in (touched[0], untouched[0]):
            con.execute(
                "insert into intermediate.int_calls "
                "select * from intermediate.int_calls where call_id = ?",
                [call_id],
            )

    # an incremental build's test: only the touched call's duplicate
    assert failing_rows(dbt(["test"], warehouse, tmp_path / "incremental")) == 1
    # a full refresh's test: both
    assert failing_rows(dbt(["build", "--full-refresh"], warehouse, tmp_path / "full")) == 2

"""The per-call `unique` tests read the calls the build recomputed (macros/test_unique_per_call.sql),
and the other incremental models' `unique_recomputed` tests the keys the build wrote
(macros/test_unique_recomputed.sql).

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


def dbt(
    command: list[str], warehouse: Path, target: Path, node: str = TEST_NODE
) -> subprocess.CompletedProcess:
    return run_dbt([*command, "--select", node], warehouse, target)


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
        con.execute(
            "insert into intermediate.int_calls_touched (kind, call_id) values ('root', ?)",
            [touched[0]],
        )
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


RECOMPUTED_NODE = (
    "unique_recomputed_int_missed_call_episodes_enriched_episode_id__recomputed_episodes"
)


def test_unique_recomputed_counts_every_row_of_the_keys_written_unless_full_refresh(
    pipeline_warehouse, tmp_path
):
    """Three duplicated episode_ids in int_missed_call_episodes_enriched: one whose copies
    are both old rows (an earlier build's, load_seq at the watermark), one whose extra copy
    this build wrote (load_seq above it) beside the old row, and one with both copies new. The
    incremental build's test finds the two with a written row, old copies included; a full
    refresh's every one."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy2(pipeline_warehouse, warehouse)
    table = "intermediate.int_missed_call_episodes_enriched"
    with duckdb.connect(str(warehouse)) as con:
        watermark = con.execute(
            "select through_load_seq from raw.build_state where name = 'built'"
        ).fetchone()[0]
        assert con.execute(f"select max(load_seq) from {table}").fetchone()[0] <= watermark
        old, mixed, new = (
            row[0]
            for row in con.execute(
                f"select episode_id from {table} order by episode_id limit 3"
            ).fetchall()
        )
        con.execute(f"insert into {table} select * from {table} where episode_id = ?", [old])
        for episode_id in (mixed, new):
            con.execute(
                f"insert into {table} select * replace (? as load_seq) from {table} "
                "where episode_id = ?",
                [watermark + 1, episode_id],
            )
        con.execute(f"update {table} set load_seq = ? where episode_id = ?", [watermark + 1, new])

    target = tmp_path / "incremental"
    assert failing_rows(dbt(["test"], warehouse, target, RECOMPUTED_NODE)) == 2
    full = tmp_path / "full"
    assert failing_rows(dbt(["build", "--full-refresh"], warehouse, full, RECOMPUTED_NODE)) == 3

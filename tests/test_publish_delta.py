"""Delta publication (orchestration/publish.py): after incremental builds the published file is
a copy of the last one with `fct_calls` patched for the calls the builds recomputed,
`fct_missed_call_episodes_stored` for the episodes they wrote or dropped, and every other table
replaced; `fct_missed_call_episodes` is the same view over the file's own tables. The result
must equal a full publish of the same warehouse; anything that makes the file on disk or the
delta untrustworthy publishes in full."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from orchestration.publish import (
    DELTA_CALLS,
    DELTA_EPISODES,
    STATE_TABLE,
    delta_calls,
    note_marts_built,
    publish_marts,
)


# no limit on the calls patched since the last full publish (tested on its own below)
ANY_SHARE = 1.0


def _warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create schema intermediate")
    con.execute(
        "create table marts.fct_calls as select * from (values "
        "('a', 1.0, 'x'), ('b', 2.0, 'y'), ('c', 3.0, 'z'), ('d', 4.0, 'w')) "
        "as t(call_id, wait_seconds, site)"
    )
    con.execute("create table marts.mart_weekly_summary as select 10 as inbound_calls")
    con.execute("create table intermediate.int_calls_touched (call_id varchar, kind varchar)")
    # the episodes: written by the builds (load_seq), stored in the marts, read through a view
    # whose relations are named without the catalog (as dbt's model writes them)
    con.execute(
        "create table intermediate.int_missed_call_episodes_enriched as select * from (values "
        "('e1', 0), ('e2', 0), ('e3', 0)) as t(episode_id, load_seq)"
    )
    con.execute(
        "create table marts.fct_missed_call_episodes_stored as select * from (values "
        "('e1', 'nyc', 1), ('e2', 'lax', 2), ('e3', 'nyc', 3)) as t(episode_id, site, attempts)"
    )
    con.execute("create table marts.dim_as_of_clocks as select 100 as as_of")
    con.execute(
        "create view marts.fct_missed_call_episodes as select episodes.*, clocks.as_of "
        "from marts.fct_missed_call_episodes_stored as episodes "
        "cross join marts.dim_as_of_clocks as clocks"
    )
    return con


def _marts(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every table of the connection's own `marts` schema, as sorted rows."""
    names = [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'marts' and table_catalog = current_database() order by 1"
        ).fetchall()
    ]
    return {n: sorted(con.execute(f"select * from marts.{n}").fetchall()) for n in names}


def _tables(path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return _marts(con)


def _incremental_build(
    con,
    changes: dict[str, float | None],
    new_total: int,
    episodes: dict[str, int | None] | None = None,
) -> None:
    """What an incremental models + marts build does to the warehouse: the touched calls'
    rows recomputed (None: the call is gone), the episodes written (None: the episode is
    gone), the other marts rebuilt, the touched set and the episodes noted."""
    since = con.execute(
        "select max(load_seq) from intermediate.int_missed_call_episodes_enriched"
    ).fetchone()[0]
    for episode_id, attempts in (episodes or {}).items():
        for table in ("intermediate.int_missed_call_episodes_enriched",
                      "marts.fct_missed_call_episodes_stored"):
            con.execute(f"delete from {table} where episode_id = ?", [episode_id])
        if attempts is not None:
            con.execute(
                "insert into intermediate.int_missed_call_episodes_enriched values (?, ?)",
                [episode_id, since + 1],
            )
            con.execute(
                "insert into marts.fct_missed_call_episodes_stored values (?, 'new', ?)",
                [episode_id, attempts],
            )
    con.execute("update marts.dim_as_of_clocks set as_of = ?", [new_total])
    con.execute("delete from intermediate.int_calls_touched")
    for call_id, wait in changes.items():
        con.execute("insert into intermediate.int_calls_touched values (?, 'root')", [call_id])
        con.execute("delete from marts.fct_calls where call_id = ?", [call_id])
        if wait is not None:
            con.execute(
                "insert into marts.fct_calls by name select ? as call_id, ? as wait_seconds, "
                "'new' as site",
                [call_id, wait],
            )
    # a leg key is not a call id of fct_calls: not part of the delta
    con.execute("insert into intermediate.int_calls_touched values ('leg-only', 'leg')")
    con.execute("create or replace table marts.mart_weekly_summary as select ? as inbound_calls",
                [new_total])
    note_marts_built(con, incremental=True, episodes_since=since)


@pytest.fixture
def setup(tmp_path):
    con = _warehouse(tmp_path / "warehouse.duckdb")
    marts = tmp_path / "ringledger.duckdb"
    first = publish_marts(con, marts, full_after_share=ANY_SHARE)
    assert first.mode == "full"  # nothing published before
    yield con, marts
    con.close()


def test_delta_publish_equals_a_full_publish(setup, tmp_path):
    con, marts = setup
    _incremental_build(con, {"a": 9.0, "b": None, "e": 5.0}, new_total=11)
    assert delta_calls(con, marts, ANY_SHARE) == 3
    result = publish_marts(con, marts, full_after_share=ANY_SHARE)
    assert (result.mode, result.delta_calls) == ("delta", 3)
    assert result.counts == {
        "dim_as_of_clocks": 1,
        "fct_calls": 4,
        "fct_missed_call_episodes": 3,
        "fct_missed_call_episodes_stored": 3,
        "mart_weekly_summary": 1,
    }
    assert _tables(marts) == _marts(con)
    # the state is reset: nothing left to patch, the file recorded
    assert con.execute(f"select count(*) from {DELTA_CALLS}").fetchone()[0] == 0
    assert con.execute(f"select count(*) from {DELTA_EPISODES}").fetchone()[0] == 0
    assert delta_calls(con, marts, ANY_SHARE) == 0
    full = publish_marts(con, tmp_path / "elsewhere.duckdb", full_after_share=ANY_SHARE)
    assert full.mode == "full"  # another path: not the file this warehouse published
    assert _tables(tmp_path / "elsewhere.duckdb") == _tables(marts)


def _views(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select table_name, table_type from information_schema.tables "
            "where table_schema = 'marts' and table_type = 'VIEW'"
        ).fetchall()


def test_episodes_patched_and_their_view_published_as_a_view(setup, tmp_path):
    """The stored episodes patched by the episodes written (changed, new) and those the
    warehouse no longer holds; the view reads the published file's own tables."""
    con, marts = setup
    _incremental_build(con, {}, new_total=21, episodes={"e1": 10, "e4": 40})
    _incremental_build(con, {}, new_total=22, episodes={"e2": None})  # merged away
    # the published view is the warehouse's view as it is now
    con.execute(
        "create or replace view marts.fct_missed_call_episodes as select episodes.*, "
        "clocks.as_of, clocks.as_of * 2 as doubled "
        "from marts.fct_missed_call_episodes_stored as episodes "
        "cross join marts.dim_as_of_clocks as clocks"
    )
    result = publish_marts(con, marts, full_after_share=ANY_SHARE)
    assert result.mode == "delta"
    assert _tables(marts) == _marts(con)
    assert _views(marts) == [("fct_missed_call_episodes", "VIEW")]
    with duckdb.connect(str(marts), read_only=True) as published:
        assert sorted(published.execute(
            "select episode_id, attempts, as_of from marts.fct_missed_call_episodes"
        ).fetchall()) == [("e1", 10, 22), ("e3", 3, 22), ("e4", 40, 22)]
    # a full publish writes the same view
    full = publish_marts(con, tmp_path / "full.duckdb", full_after_share=ANY_SHARE)
    assert full.mode == "full"
    assert _views(tmp_path / "full.duckdb") == _views(marts)
    assert _tables(tmp_path / "full.duckdb") == _tables(marts)


def test_a_stored_episodes_table_without_its_written_episodes_publishes_in_full(setup):
    """Without the watermark the build started from, the episodes it wrote are unknown."""
    con, marts = setup
    _incremental_build(con, {"a": 3.0}, new_total=23, episodes={"e3": 30})
    note_marts_built(con, incremental=True)  # no episodes_since
    assert publish_marts(con, marts, full_after_share=ANY_SHARE).mode == "full"
    assert _tables(marts) == _marts(con)


def test_delta_accumulates_builds_that_were_not_published(setup):
    con, marts = setup
    _incremental_build(con, {"a": 7.0}, new_total=12)
    _incremental_build(con, {"c": None}, new_total=13)  # e.g. a run stopped by a gate
    result = publish_marts(con, marts, full_after_share=ANY_SHARE)
    assert (result.mode, result.delta_calls) == ("delta", 2)
    assert _tables(marts) == _marts(con)


def test_a_changed_published_file_is_published_in_full(setup):
    con, marts = setup
    with duckdb.connect(str(marts)) as other:  # someone wrote into the published file
        other.execute("insert into marts.fct_calls values ('zz', 0.0, 'x')")
    _incremental_build(con, {"a": 8.0}, new_total=14)
    assert delta_calls(con, marts, ANY_SHARE) is None
    result = publish_marts(con, marts, full_after_share=ANY_SHARE)
    assert result.mode == "full"
    assert _tables(marts) == _marts(con)


@pytest.mark.parametrize("why", ["full refresh", "no delta allowed", "new column", "new table"])
def test_publishes_in_full_when_a_delta_cannot_be_trusted(setup, why):
    con, marts = setup
    _incremental_build(con, {"b": 6.0}, new_total=15)
    share = ANY_SHARE
    if why == "full refresh":
        note_marts_built(con, incremental=False)
    elif why == "no delta allowed":  # a Spark build
        share = None
    elif why == "new column":
        con.execute("alter table marts.fct_calls add column channel varchar default 'web'")
    else:
        con.execute("create table marts.mart_new as select 1 as x")
    result = publish_marts(con, marts, full_after_share=share)
    assert result.mode == "full"
    assert _tables(marts) == _marts(con)
    # the full publish is the new base: the next build's delta applies to it
    _incremental_build(con, {"d": 1.5}, new_total=16)
    assert publish_marts(con, marts, full_after_share=ANY_SHARE).mode == "delta"
    assert _tables(marts) == _marts(con)


def test_full_pending_survives_until_a_publish(setup):
    con, marts = setup
    note_marts_built(con, incremental=False)
    _incremental_build(con, {"a": 2.5}, new_total=17)  # a later incremental build
    assert con.execute(
        f"select count(*) from {STATE_TABLE} where name = 'full_pending'"
    ).fetchone()[0] == 1
    assert publish_marts(con, marts, full_after_share=ANY_SHARE).mode == "full"
    assert _tables(marts) == _marts(con)


def test_full_publish_once_the_patched_calls_reach_the_share(setup):
    con, marts = setup  # 4 calls in fct_calls: a share of 0.5 allows 2 patched calls
    _incremental_build(con, {"a": 1.1, "b": 2.2}, new_total=18)
    assert publish_marts(con, marts, full_after_share=0.5).mode == "delta"
    _incremental_build(con, {"c": 3.3}, new_total=19)  # 3 patched since the full publish
    assert delta_calls(con, marts, 0.5) is None
    result = publish_marts(con, marts, full_after_share=0.5)
    assert result.mode == "full"
    assert _tables(marts) == _marts(con)
    _incremental_build(con, {"d": 4.4}, new_total=20)  # counted again from the full publish
    assert publish_marts(con, marts, full_after_share=0.5).mode == "delta"
    assert _tables(marts) == _marts(con)


def test_no_touched_set_means_a_full_publish():
    """Without intermediate.int_calls_touched nothing says which calls changed; noting the
    build inside the transaction that moves the watermark must not abort it."""
    with duckdb.connect() as con:
        con.begin()
        note_marts_built(con, incremental=True)
        con.commit()
        assert con.execute(f"select name from {STATE_TABLE}").fetchall() == [("full_pending",)]

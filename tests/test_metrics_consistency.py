"""The metric marts agree with a plain-SQL / plain-Python recomputation from the episodes.

On the warehouse of the session's pipeline run (generated data), every `all` row and every
percentile of mart_callback_delay_percentiles, the weekly summary's counts and rates, the
conversion mart and the revenue mart are recomputed from fct_missed_call_episodes / fct_calls
(plus the converting opportunities for the value per conversion) and compared. Also: no
caller's phone number anywhere in schema `marts`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from orchestration.config import load_config

REL = 1e-9
ABS = 1e-9
INTENTS = ("high_intent", "service", "informational", "wrong_or_spam")
PERCENTILE_COLUMNS = [
    (f"p{int(q * 100)}_{kind}_{clock}", q, f"{kind}_delay_{clock}")
    for kind in ("attempt", "contact")
    for clock in ("minutes", "business_minutes")
    for q in (0.5, 0.9, 0.95)
]


@pytest.fixture(scope="module")
def con(pipeline_warehouse: Path):
    connection = duckdb.connect(str(pipeline_warehouse), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def metric_vars() -> dict:
    return load_config().dbt_vars()


def rows(con, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=REL, abs_tol=ABS)
    return a == b


def wilson(successes: int | None, trials: int, z: float) -> tuple[float | None, float | None]:
    if successes is None or not trials:
        return None, None
    p = successes / trials
    denominator = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    low = 0.0 if p == 0 else max(0.0, center - half)
    high = 1.0 if p == 1 else min(1.0, center + half)
    return low, high


def test_warehouse_has_episodes(con):
    count = con.execute(
        "select count(*) from marts.fct_missed_call_episodes where not is_noise"
    ).fetchone()[0]
    assert count > 50, "the generated sample should produce non-noise episodes"


def test_percentile_mart_rows_recomputed(con):
    mart = rows(con, "select * from marts.mart_callback_delay_percentiles")
    assert mart
    percentile_sql = ", ".join(
        f"quantile_cont({column}, {q}) as {name}" for name, q, column in PERCENTILE_COLUMNS
    )
    for row in mart:
        where = ["not is_noise", "week_start = ?"]
        params: list = [row["week_start"]]
        for dimension in ("intent", "hours_segment"):
            if row[dimension] != "all":
                where.append(f"{dimension} = ?")
                params.append(row[dimension])
        if row["source"] == "(none)":
            where.append("source is null")
        elif row["source"] != "all":
            where.append("source = ?")
            params.append(row["source"])
        expected = rows(
            con,
            f"""
            select
                count(*) as episodes,
                count(first_attempt_at_utc) / count(*) as callback_attempt_rate,
                count(first_contact_at_utc) / count(*) as contact_rate,
                count(*) filter (where has_connected_callback) / count(*) as callback_completion_rate,
                count(*) filter (where sla_status = 'breached') as sla_breaches,
                count(*) filter (where sla_status = 'breached')
                    / nullif(count(*) filter (where sla_status in ('met', 'breached')), 0) as sla_breach_rate,
                {percentile_sql}
            from marts.fct_missed_call_episodes
            where {" and ".join(where)}
            """,
            params,
        )[0]
        for column, value in expected.items():
            assert same(row[column], value), (
                row["week_start"],
                row["intent"],
                row["hours_segment"],
                row["source"],
                column,
                row[column],
                value,
            )


def test_percentile_mart_has_every_grouping_set(con):
    weeks = [
        r[0]
        for r in con.execute(
            "select distinct week_start from marts.fct_missed_call_episodes where not is_noise"
        ).fetchall()
    ]
    for week in weeks:
        sets = {
            (r["intent"] == "all", r["hours_segment"] == "all", r["source"] == "all")
            for r in rows(
                con,
                "select * from marts.mart_callback_delay_percentiles where week_start = ?",
                [week],
            )
        }
        assert len(sets) == 8, (week, sets)
    totals = rows(
        con,
        """
        select week_start, episodes from marts.mart_callback_delay_percentiles
        where intent = 'all' and hours_segment = 'all' and source = 'all'
        """,
    )
    assert sorted(r["week_start"] for r in totals) == sorted(weeks)
    # rows of one grouping set add up to the week's total (counts only: rates are never averaged)
    mismatched = con.execute(
        """
        with totals as (
            select week_start, episodes from marts.mart_callback_delay_percentiles
            where intent = 'all' and hours_segment = 'all' and source = 'all'
        ),
        by_intent as (
            select week_start, sum(episodes) as episodes from marts.mart_callback_delay_percentiles
            where intent <> 'all' and hours_segment = 'all' and source = 'all'
            group by week_start
        )
        select count(*) from totals join by_intent using (week_start)
        where totals.episodes <> by_intent.episodes
        """
    ).fetchone()[0]
    assert mismatched == 0


def test_conversion_mart_recomputed(con, metric_vars):
    z = float(metric_vars["wilson_z"])
    sample = int(metric_vars["min_segment_sample"])
    known = (
        con.execute(
            "select count(*) from intermediate.int_crm_opportunities_deduplicated"
        ).fetchone()[0]
        > 0
    )
    buckets = [r[0] for r in con.execute("select delay_bucket from seeds.delay_buckets").fetchall()]
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for e in rows(
        con,
        "select intent, delay_bucket, converted from marts.fct_missed_call_episodes where is_in_revenue_lookback",
    ):
        for intent in (e["intent"], "all"):
            counts[(intent, e["delay_bucket"])][0] += 1
            counts[(intent, e["delay_bucket"])][1] += 1 if e["converted"] else 0
    mart = {
        (r["intent"], r["delay_bucket"]): r
        for r in rows(con, "select * from marts.mart_conversion_by_delay_bucket")
    }
    assert set(mart) == {(i, b) for i in (*INTENTS, "all") for b in buckets}
    for key, row in mart.items():
        episodes, conversions = counts.get(key, [0, 0])
        conversions = conversions if known else None
        low, high = wilson(conversions, episodes, z)
        assert row["episodes"] == episodes, key
        assert row["conversions"] == conversions, key
        assert same(
            row["conversion_rate"],
            None if conversions is None or not episodes else conversions / episodes,
        ), key
        assert same(row["ci_low"], low), (key, row["ci_low"], low)
        assert same(row["ci_high"], high), (key, row["ci_high"], high)
        assert row["low_confidence"] == (episodes < sample), key
        if row["ci_low"] is not None:
            assert row["ci_low"] <= row["conversion_rate"] <= row["ci_high"]


def test_revenue_mart_recomputed(con, metric_vars):
    z = float(metric_vars["wilson_z"])
    sample = int(metric_vars["min_segment_sample"])
    known = (
        con.execute(
            "select count(*) from intermediate.int_crm_opportunities_deduplicated"
        ).fetchone()[0]
        > 0
    )
    episodes = rows(con, "select * from marts.fct_missed_call_episodes where not is_noise")
    lookback = [e for e in episodes if e["is_in_revenue_lookback"]]
    bucket_rates = {
        (r["intent"], r["delay_bucket"]): r
        for r in rows(con, "select * from marts.mart_conversion_by_delay_bucket")
    }

    def baseline(intent: str) -> tuple[int, float | None, float | None, float | None]:
        group = [
            e
            for e in lookback
            if e["is_contacted_within_sla"] and (intent == "all" or e["intent"] == intent)
        ]
        n = len(group)
        x = sum(1 for e in group if e["converted"]) if known else None
        low, high = wilson(x, n, z)
        return n, (x / n if n and x is not None else None), low, high

    opportunities = rows(
        con,
        """
        select distinct episodes.intent, matched.opportunity_id, matched.amount, matched.is_won, matched.is_closed
        from intermediate.int_episode_conversions_matched as matched
        join marts.fct_missed_call_episodes as episodes using (episode_id)
        where episodes.is_in_revenue_lookback
        """,
    )

    def value(intent: str) -> float | None:
        if not known:
            return None
        chosen = {
            o["opportunity_id"]: o
            for o in opportunities
            if intent == "all" or o["intent"] == intent
        }.values()
        closed = [o for o in chosen if o["is_closed"]]
        won = [o for o in chosen if o["is_won"]]
        if not closed:
            return 0.0
        amounts = [o["amount"] for o in won if o["amount"] is not None]
        mean = sum(amounts) / len(amounts) if amounts else 0.0
        return mean * len(won) / len(closed)

    overall = baseline("all")
    mart = rows(con, "select * from marts.mart_revenue_at_risk")
    assert mart
    by_week: dict = defaultdict(dict)
    for row in mart:
        by_week[row["week_start"]][row["intent"]] = row
    for week, intents in by_week.items():
        assert set(intents) == {*INTENTS, "all"}, week
        for intent in INTENTS:
            row = intents[intent]
            own = baseline(intent)
            baseline_fallback = own[0] < sample
            used = overall if baseline_fallback else own
            breached = [
                e
                for e in episodes
                if e["week_start"] == week
                and e["intent"] == intent
                and e["sla_status"] == "breached"
            ]
            totals = {"low": 0.0, "mid": 0.0, "high": 0.0}
            low_confidence = baseline_fallback
            for e in breached:
                rate_row = bucket_rates[(intent, e["delay_bucket"])]
                if rate_row["episodes"] < sample:
                    rate_row = bucket_rates[("all", e["delay_bucket"])]
                    low_confidence = True
                b_rate, b_low, b_high = used[1], used[2], used[3]
                k_rate, k_low, k_high = (
                    rate_row["conversion_rate"],
                    rate_row["ci_low"],
                    rate_row["ci_high"],
                )
                if None in (b_rate, b_low, b_high, k_rate, k_low, k_high):
                    low_confidence = True
                    continue
                v = value(intent) or 0.0
                totals["low"] += max(0.0, b_low - k_high) * v
                totals["mid"] += max(0.0, b_rate - k_rate) * v
                totals["high"] += max(0.0, b_high - k_low) * v
            assert row["breached_episodes"] == len(breached), (week, intent)
            assert same(row["value_per_conversion"], value(intent)), (week, intent)
            assert same(row["baseline_rate"], used[1]), (week, intent)
            assert row["sample_episodes"] == sum(1 for e in lookback if e["intent"] == intent)
            assert row["low_confidence"] == low_confidence, (week, intent)
            for bound in ("low", "mid", "high"):
                expected = totals[bound] if known else None
                assert same(row[f"revenue_at_risk_{bound}"], expected), (
                    week,
                    intent,
                    bound,
                    row[f"revenue_at_risk_{bound}"],
                    expected,
                )
            if known:
                assert row["revenue_at_risk_low"] <= row["revenue_at_risk_mid"] + ABS
                assert row["revenue_at_risk_mid"] <= row["revenue_at_risk_high"] + ABS
                if not breached:
                    assert (
                        row["revenue_at_risk_low"]
                        == row["revenue_at_risk_mid"]
                        == row["revenue_at_risk_high"]
                        == 0
                    )
        all_row = intents["all"]
        for column in (
            "breached_episodes",
            "revenue_at_risk_low",
            "revenue_at_risk_mid",
            "revenue_at_risk_high",
        ):
            parts = [intents[i][column] for i in INTENTS]
            expected = None if any(p is None for p in parts) else sum(parts)
            assert same(all_row[column], expected), (week, column)
        assert same(all_row["baseline_rate"], overall[1])
        assert same(all_row["value_per_conversion"], value("all"))
        assert all_row["sample_episodes"] == len(lookback)


def test_weekly_summary_recomputed(con, metric_vars):
    summary = rows(con, "select * from marts.mart_weekly_summary order by week_start")
    assert summary
    calls = {
        r["week_start"]: r
        for r in rows(
            con,
            """
            select week_start,
                   count(*) filter (where is_inbound) as inbound_calls,
                   count(*) filter (where is_inbound and is_answered) as answered_calls,
                   count(*) filter (where is_missed) as missed_calls
            from marts.fct_calls group by week_start
            """,
        )
    }
    episodes = {
        r["week_start"]: r
        for r in rows(
            con,
            """
            select week_start,
                   count(*) filter (where is_noise) as noise_misses,
                   count(*) filter (where not is_noise) as episodes,
                   count(*) filter (where not is_noise and intent = 'high_intent') as high_intent_episodes,
                   count(*) filter (where not is_noise and intent = 'high_intent' and sla_status = 'breached') as high_intent_breaches,
                   count(*) filter (where not is_noise and has_connected_callback)
                       / nullif(count(*) filter (where not is_noise), 0) as callback_completion_rate,
                   quantile_cont(attempt_delay_minutes, 0.5) filter (where not is_noise) as p50_attempt_minutes,
                   quantile_cont(attempt_delay_minutes, 0.9) filter (where not is_noise) as p90_attempt_minutes,
                   count(*) filter (where not is_noise and sla_status = 'breached')
                       / nullif(count(*) filter (where not is_noise and sla_status in ('met', 'breached')), 0) as sla_breach_rate
            from marts.fct_missed_call_episodes group by week_start
            """,
        )
    }
    revenue = {
        r["week_start"]: r
        for r in rows(con, "select * from marts.mart_revenue_at_risk where intent = 'high_intent'")
    }
    by_week = {r["week_start"]: r for r in summary}
    spike = float(metric_vars["spike_threshold"])
    for row in summary:
        week = row["week_start"]
        c = calls.get(week, {"inbound_calls": 0, "answered_calls": 0, "missed_calls": 0})
        e = episodes.get(week, {})
        assert row["inbound_calls"] == c["inbound_calls"], week
        assert row["answered_calls"] == c["answered_calls"], week
        assert row["missed_calls"] == c["missed_calls"], week
        assert row["noise_misses"] == e.get("noise_misses", 0), week
        non_noise_missed = c["missed_calls"] - e.get("noise_misses", 0)
        denominator = c["answered_calls"] + non_noise_missed
        assert same(row["miss_rate"], non_noise_missed / denominator if denominator else None), week
        assert row["episodes"] == e.get("episodes", 0), week
        assert row["high_intent_episodes"] == e.get("high_intent_episodes", 0), week
        assert row["high_intent_breaches"] == e.get("high_intent_breaches", 0), week
        assert same(
            row["high_intent_share"],
            (e["high_intent_episodes"] / e["episodes"]) if e.get("episodes") else None,
        )
        for column in (
            "callback_completion_rate",
            "p50_attempt_minutes",
            "p90_attempt_minutes",
            "sla_breach_rate",
        ):
            assert same(row[column], e.get(column)), (week, column, row[column], e.get(column))
        for bound in ("low", "mid", "high"):
            column = f"revenue_at_risk_{bound}"
            assert same(row[column], revenue[week][column] if week in revenue else None), (
                week,
                column,
            )
        previous = [r for w, r in by_week.items() if (week - w).days == 7]
        previous_count = previous[0]["high_intent_episodes"] if previous else 0
        expected_change = (
            (row["high_intent_episodes"] - previous_count) / previous_count
            if previous_count
            else None
        )
        assert same(row["high_intent_episodes_wow_change"], expected_change), week
        assert row["is_spike"] == (expected_change is not None and expected_change >= spike), week


def test_episode_rules_hold(con):
    """Row-level invariants of fct_missed_call_episodes."""
    bad = con.execute(
        """
        select count(*) from marts.fct_missed_call_episodes
        where (is_noise and (missed_attempts <> 1 or sla_status <> 'none' or noise_reason is null))
           or (not is_noise and noise_reason is not null)
           or (first_contact_at_utc is null) <> (recovered_by = 'none')
           or (first_contact_at_utc is null) <> (delay_bucket = 'never')
           or (first_attempt_at_utc is null) <> (attempt_delay_minutes is null)
           or first_attempt_at_utc <= first_missed_at_utc
           or first_contact_at_utc <= first_missed_at_utc
           or last_missed_at_utc < first_missed_at_utc
           or (callback_attempts = 0) <> (first_attempt_at_utc is null)
           or (intent = 'wrong_or_spam') <> (intent_rule = 1) and intent_rule = 1
           or (noise_reason in ('blocklisted', 'wrong_number') and intent_rule <> 1)
           or attempt_delay_business_minutes > attempt_delay_minutes + 1e-9
           or contact_delay_business_minutes > contact_delay_minutes + 1e-9
           or (sla_status = 'met' and least(coalesce(first_attempt_at_utc, first_inbound_recovery_at_utc),
                                            coalesce(first_inbound_recovery_at_utc, first_attempt_at_utc)) > sla_due_at_utc)
           or (sla_status = 'breached' and as_of_utc <= sla_due_at_utc)
           or (sla_status = 'open' and as_of_utc > sla_due_at_utc)
        """
    ).fetchone()[0]
    assert bad == 0


E164 = re.compile(r"^\+\d{8,15}$")


def test_no_caller_number_in_marts(con):
    callers = {
        r[0]
        for r in con.execute(
            """
            select caller_number_e164 from intermediate.int_calls_classified where caller_number_e164 is not null
            union
            select caller_number_raw from intermediate.int_calls_classified
            where caller_number_raw is not null and length(caller_number_raw) >= 7
            """
        ).fetchall()
    }
    business_lines = {
        r[0]
        for r in con.execute("select business_line from intermediate.int_business_lines").fetchall()
    }
    assert callers, "the sample should have callers"
    columns = rows(
        con,
        """
        select table_name, column_name from information_schema.columns
        where table_schema = 'marts' and data_type = 'VARCHAR'
        """,
    )
    for column in columns:
        name = column["column_name"]
        assert "e164" not in name and "number_raw" not in name, column
        values = {
            r[0]
            for r in con.execute(
                f'select distinct "{name}" from marts."{column["table_name"]}" where "{name}" is not null'
            ).fetchall()
        }
        leaked = (values & callers) | {
            v for v in values if E164.match(v) and v not in business_lines
        }
        assert not leaked, (column, sorted(leaked)[:3])
    restricted = con.execute(
        "select count(*) from information_schema.columns where table_schema = 'restricted' "
        "and table_name = 'callback_worklist' and column_name = 'caller_number_e164'"
    ).fetchone()[0]
    assert restricted == 1
    worklist_rows = con.execute("select count(*) from marts.callback_worklist").fetchone()[0]
    restricted_rows = con.execute("select count(*) from restricted.callback_worklist").fetchone()[0]
    assert worklist_rows == restricted_rows

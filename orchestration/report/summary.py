"""The one-page summary: the latest week against the one before, spikes annotated."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from orchestration.report import fmt
from orchestration.report.charts import bucket_label
from orchestration.report.data import ReportData


@dataclass
class Item:
    label: str
    value: str
    change: str = ""
    # "worse", "better" or "" (neutral): how the change reads for the business
    tone: str = ""
    note: str = ""


@dataclass
class Summary:
    week_label: str
    previous_label: str | None
    partial_week: bool
    items: list[Item] = field(default_factory=list)
    spikes: list[str] = field(default_factory=list)
    headline: list[str] = field(default_factory=list)


def _v(rec, key):
    if rec is None:
        return None
    value = rec.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _tone(delta, higher_is_worse: bool) -> str:
    if delta is None or abs(delta) < 1e-9:
        return ""
    return "worse" if (delta > 0) == higher_is_worse else "better"


def _delta(cur, prev):
    return None if cur is None or prev is None else cur - prev


def _relative(cur, prev):
    if cur is None or prev is None or prev == 0:
        return None
    return (cur - prev) / prev


def build_summary(data: ReportData, cliff: dict | None, currency: str = fmt.CURRENCY) -> Summary:
    weekly = data.weekly.to_dict("records")
    cur = weekly[-1]
    prev = weekly[-2] if len(weekly) > 1 else None
    week = cur["week_start"]
    partial = bool(data.as_of and data.as_of.date() < week + timedelta(days=6))
    summary = Summary(
        week_label=fmt.day(week),
        previous_label=fmt.day(prev["week_start"]) if prev else None,
        partial_week=partial,
    )
    revenue_all = {
        r["week_start"]: r for r in data.revenue[data.revenue["intent"] == "all"].to_dict("records")
    }
    rev_cur, rev_prev = revenue_all.get(week), revenue_all.get(prev["week_start"]) if prev else None

    def rate_item(label, key, higher_is_worse, note=""):
        c, p = _v(cur, key), _v(prev, key)
        d = _delta(c, p)
        return Item(label, fmt.pct(c, 1), fmt.pct_points(d) if d is not None else "",
                    _tone(d, higher_is_worse), note)

    def count_item(label, key, higher_is_worse, note=""):
        c, p = _v(cur, key), _v(prev, key)
        r = _relative(c, p)
        return Item(label, fmt.count(c), fmt.signed_pct(r) if r is not None else "",
                    _tone(r, higher_is_worse), note)

    hi_change = _v(cur, "high_intent_episodes_wow_change")
    hi = Item(
        "High-intent episodes",
        fmt.count(_v(cur, "high_intent_episodes")),
        fmt.signed_pct(hi_change) if hi_change is not None else "",
        _tone(hi_change, True),
        "SPIKE" if cur.get("is_spike") else "",
    )
    summary.items = [
        hi,
        count_item("Missed-call episodes", "episodes", True, "noise excluded"),
        rate_item("Miss rate", "miss_rate", True, "of inbound calls"),
        rate_item("Callback completion", "callback_completion_rate", False, "connected callback"),
        rate_item("Contact rate", "contact_rate", False, "callback or caller called back"),
    ]
    p90c, p90p = _v(cur, "p90_attempt_minutes"), _v(prev, "p90_attempt_minutes")
    d90 = _delta(p90c, p90p)
    summary.items.append(
        Item(
            "p90 time to first attempt",
            fmt.duration(p90c),
            ("+" if d90 >= 0 else "-") + fmt.duration(abs(d90)) if d90 is not None else "",
            _tone(d90, True),
            f"p50 {fmt.duration(_v(cur, 'p50_attempt_minutes'))}",
        )
    )
    summary.items.append(rate_item("SLA breach rate", "sla_breach_rate", True, "breached / (met + breached)"))
    mid_c, mid_p = _v(rev_cur, "revenue_at_risk_mid"), _v(rev_prev, "revenue_at_risk_mid")
    r = _relative(mid_c, mid_p)
    summary.items.append(
        Item(
            "Revenue at risk (all intents)",
            fmt.money(mid_c, currency),
            fmt.signed_pct(r) if r is not None else "",
            _tone(r, True),
            "range " + fmt.money_range(
                _v(rev_cur, "revenue_at_risk_low"), _v(rev_cur, "revenue_at_risk_high"), currency
            ),
        )
    )
    summary.items.append(
        Item(
            "of which high intent",
            fmt.money(_v(cur, "revenue_at_risk_mid"), currency),
            "",
            "",
            "range " + fmt.money_range(
                _v(cur, "revenue_at_risk_low"), _v(cur, "revenue_at_risk_high"), currency
            ),
        )
    )
    for rec in weekly:
        if rec.get("is_spike"):
            summary.spikes.append(
                f"Week of {fmt.day(rec['week_start'])}: {fmt.count(_v(rec, 'high_intent_episodes'))} "
                f"high-intent episodes, {fmt.signed_pct(_v(rec, 'high_intent_episodes_wow_change'))} "
                "on the week before"
            )
    # headline sentences a leader reads first
    total_mid = sum(
        (_v(revenue_all.get(w), "revenue_at_risk_mid") or 0) for w in data.week_starts
    )
    summary.headline.append(
        f"{fmt.money(total_mid, currency)} of revenue at risk over the last "
        f"{len(weekly)} week{'s' if len(weekly) != 1 else ''} (central estimate, all intents)."
    )
    if cliff:
        summary.headline.append(
            f"Conversion drops from {fmt.pct(cliff['rate_before'])} to "
            f"{fmt.pct(cliff['rate_after'])} once first contact takes longer than "
            f"{bucket_label(cliff['before']).split('–')[-1]}: the conversion cliff."
        )
    if summary.spikes:
        summary.headline.append(f"{len(summary.spikes)} high-intent spike week(s) in the window.")
    return summary

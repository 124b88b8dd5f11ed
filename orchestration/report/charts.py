"""The report's charts, as Altair (Vega-Lite) specs built from the published marts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

import altair as alt
import pandas as pd

from orchestration.report import fmt
from orchestration.report.data import ReportData

WIDTH = 680
HEIGHT = 240
INTENTS = ("high_intent", "service", "informational")
INTENT_LABELS = {
    "high_intent": "High intent",
    "service": "Service",
    "informational": "Informational",
    "wrong_or_spam": "Wrong number / spam",
    "all": "All intents",
}
PALETTE = {
    "blue": "#1f5fa8",
    "light_blue": "#9cc3ea",
    "orange": "#e07b00",
    "red": "#c62828",
    "grey": "#8a8f98",
    "green": "#2e7d32",
}
DURATION_TICKS = [5, 15, 30, 60, 120, 240, 480, 1440, 2880, 5760, 10080]


@dataclass
class Chart:
    name: str  # file stem and element id
    title: str
    caption: str
    spec: dict


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (
        chart.configure(font="Liberation Sans, Arial, Helvetica, sans-serif")
        .configure_axis(labelFontSize=12, titleFontSize=13, grid=True, gridColor="#e6e8eb")
        .configure_axisX(grid=False)
        .configure_legend(labelFontSize=12, titleFontSize=12, orient="top", labelLimit=0)
        .configure_title(fontSize=16, anchor="start", subtitleFontSize=12, subtitleColor="#555")
        .configure_view(stroke=None)
    )


def _week_labels(weeks: list[date]) -> dict[date, str]:
    span_years = len({w.year for w in weeks}) > 1
    pattern = "%d %b %y" if span_years else "%d %b"
    return {w: w.strftime(pattern) for w in weeks}


def _none(value):
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _empty(message: str, title: str) -> alt.Chart:
    frame = pd.DataFrame({"message": [message]})
    return (
        alt.Chart(frame, title=title, width=WIDTH, height=80)
        .mark_text(fontSize=14, color=PALETTE["grey"])
        .encode(text="message:N")
    )


def _x_week(order: list[str]) -> alt.X:
    return alt.X("week:O", sort=order, title="Week starting", axis=alt.Axis(labelAngle=0))


# -- 1. high-intent misses per week ----------------------------------------------------
def high_intent_misses(data: ReportData) -> Chart:
    title = "High-intent missed-call episodes per week"
    weekly = data.weekly
    labels = _week_labels(data.week_starts)
    order = [labels[w] for w in data.week_starts]
    rows = []
    for rec in weekly.to_dict("records"):
        change = _none(rec.get("high_intent_episodes_wow_change"))
        spike = bool(rec.get("is_spike"))
        rows.append(
            {
                "week": labels[rec["week_start"]],
                "episodes": int(rec.get("high_intent_episodes") or 0),
                "kind": "Spike" if spike else "Week",
                "change": fmt.signed_pct(change) + " vs previous week" if change is not None else "",
                "note": f"spike {fmt.signed_pct(change)}" if spike else "",
                "share": fmt.pct(_none(rec.get("high_intent_share"))),
            }
        )
    frame = pd.DataFrame(rows)
    base = alt.Chart(frame, width=WIDTH, height=HEIGHT)
    bars = base.mark_bar(size=28).encode(
        x=_x_week(order),
        y=alt.Y("episodes:Q", title="High-intent episodes"),
        color=alt.Color(
            "kind:N",
            title=None,
            scale=alt.Scale(domain=["Week", "Spike"], range=[PALETTE["blue"], PALETTE["red"]]),
        ),
        tooltip=[
            alt.Tooltip("week:O", title="Week starting"),
            alt.Tooltip("episodes:Q", title="High-intent episodes", format=","),
            alt.Tooltip("share:N", title="Share of all episodes"),
            alt.Tooltip("change:N", title="Week over week"),
        ],
    )
    values = base.mark_text(dy=-8, fontSize=11, color="#333").encode(
        x=_x_week(order), y="episodes:Q", text=alt.Text("episodes:Q", format=",")
    )
    spikes = base.mark_text(dy=-24, fontSize=12, fontWeight="bold", color=PALETTE["red"]).encode(
        x=_x_week(order), y="episodes:Q", text="note:N"
    )
    chart = alt.layer(bars, values, spikes).properties(
        title=alt.Title(
            title,
            subtitle="Non-noise episodes classified high intent; red bars are spikes "
            "(week-over-week growth at or above the spike threshold).",
        )
    )
    return Chart(
        "high_intent_misses",
        title,
        "Each bar counts the week's high-intent episodes (repeat dials collapsed, noise excluded).",
        _config(chart).to_dict(),
    )


# -- 2. callback delay percentiles per intent ---------------------------------------------
def callback_delay(data: ReportData) -> Chart:
    title = "Time to first callback attempt: p50 / p90 / p95 per intent"
    frame = data.percentiles
    labels = _week_labels(data.week_starts)
    order = [labels[w] for w in data.week_starts]
    rows = []
    for rec in frame.to_dict("records"):
        if rec["intent"] not in INTENTS or rec["week_start"] not in labels:
            continue
        for pct in ("p50", "p90", "p95"):
            value = _none(rec.get(f"{pct}_attempt_minutes"))
            if value is None:
                continue
            rows.append(
                {
                    "week": labels[rec["week_start"]],
                    "intent": INTENT_LABELS[rec["intent"]],
                    "percentile": pct,
                    "minutes": max(float(value), 1.0),
                    "label": fmt.duration(value),
                    "episodes": int(rec.get("episodes") or 0),
                }
            )
    if not rows:
        chart = _empty("No callback attempts in these weeks", title)
        return Chart("callback_delay", title, "", _config(chart).to_dict())
    data_frame = pd.DataFrame(rows)
    intent_order = [INTENT_LABELS[i] for i in INTENTS]
    top = max(r["minutes"] for r in rows)
    ticks = [t for t in DURATION_TICKS if t <= top * 1.5] or DURATION_TICKS[:3]
    chart = (
        alt.Chart(data_frame, width=WIDTH // 3 - 40, height=HEIGHT)
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("week:O", sort=order, title=None, axis=alt.Axis(labelAngle=-45)),
            y=alt.Y(
                "minutes:Q",
                title="Minutes to first attempt (log scale)",
                scale=alt.Scale(type="log"),
                axis=alt.Axis(values=ticks, labelExpr=fmt.VEGA_DURATION_LABEL),
            ),
            color=alt.Color(
                "percentile:N",
                title="Percentile",
                scale=alt.Scale(
                    domain=["p50", "p90", "p95"],
                    range=[PALETTE["blue"], PALETTE["orange"], PALETTE["red"]],
                ),
            ),
            tooltip=[
                alt.Tooltip("intent:N", title="Intent"),
                alt.Tooltip("week:O", title="Week starting"),
                alt.Tooltip("percentile:N", title="Percentile"),
                alt.Tooltip("label:N", title="Time to first attempt"),
                alt.Tooltip("episodes:Q", title="Episodes", format=","),
            ],
        )
        .facet(
            column=alt.Column(
                "intent:N", sort=intent_order, title=None, header=alt.Header(labelFontSize=13)
            )
        )
        .properties(
            title=alt.Title(
                title,
                subtitle="Half of the week's episodes got a first attempt within p50; "
                "1 in 10 waited longer than p90.",
            )
        )
    )
    return Chart(
        "callback_delay",
        title,
        "Wall-clock time from the first miss to the first callback attempt, per week of the "
        "first miss; episodes never attempted are not in these percentiles (see the attempt rate).",
        _config(chart).to_dict(),
    )


# -- 3. callback completion vs contact rate -------------------------------------------------
def completion_vs_contact(data: ReportData) -> Chart:
    title = "Callback completion vs contact rate"
    labels = _week_labels(data.week_starts)
    order = [labels[w] for w in data.week_starts]
    series = {
        "callback_completion_rate": "Callback completion rate",
        "contact_rate": "Contact rate",
        "callback_attempt_rate": "Callback attempt rate",
    }
    rows = []
    for rec in data.weekly.to_dict("records"):
        for column, name in series.items():
            value = _none(rec.get(column))
            if value is None:
                continue
            rows.append(
                {"week": labels[rec["week_start"]], "series": name, "rate": float(value),
                 "label": fmt.pct(value, 1)}
            )
    if not rows:
        chart = _empty("No episodes in these weeks", title)
        return Chart("completion_vs_contact", title, "", _config(chart).to_dict())
    frame = pd.DataFrame(rows)
    names = list(series.values())
    chart = (
        alt.Chart(frame, width=WIDTH, height=HEIGHT)
        .mark_line(point=True, strokeWidth=2.5)
        .encode(
            x=_x_week(order),
            y=alt.Y(
                "rate:Q",
                title="Share of episodes",
                axis=alt.Axis(format=".0%"),
                scale=alt.Scale(domain=[0, 1]),
            ),
            color=alt.Color(
                "series:N",
                title=None,
                sort=names,
                scale=alt.Scale(
                    domain=names, range=[PALETTE["blue"], PALETTE["green"], PALETTE["grey"]]
                ),
            ),
            strokeDash=alt.StrokeDash(
                "series:N", sort=names, title=None,
                scale=alt.Scale(domain=names, range=[[1, 0], [1, 0], [4, 3]]),
            ),
            tooltip=[
                alt.Tooltip("week:O", title="Week starting"),
                alt.Tooltip("series:N", title="Rate"),
                alt.Tooltip("label:N", title="Share of episodes"),
            ],
        )
        .properties(
            title=alt.Title(
                title,
                subtitle="Contact also counts callers who called again and were answered; "
                "completion needs a connected callback.",
            )
        )
    )
    return Chart(
        "completion_vs_contact",
        title,
        "Completion counts episodes with a connected callback within the horizon; contact also "
        "counts callers who called back and were answered. Attempted (dashed) is any callback "
        "attempt, connected or not.",
        _config(chart).to_dict(),
    )


# -- 4. conversion by delay bucket ----------------------------------------------------------
def find_cliff(conversion: pd.DataFrame, intent: str = "all") -> dict | None:
    """The largest drop in conversion rate between two consecutive delay buckets (the
    `never` bucket excluded): where waiting longer costs the most."""
    rows = [
        r
        for r in conversion[conversion["intent"] == intent]
        .sort_values("delay_bucket_sort_order")
        .to_dict("records")
        if r["delay_bucket"] != "never"
    ]
    best = None
    for before, after in pairwise(rows):
        a, b = _none(before.get("conversion_rate")), _none(after.get("conversion_rate"))
        if a is None or b is None:
            continue
        drop = a - b
        if drop > 0 and (best is None or drop > best["drop"]):
            separated = (
                _none(before.get("ci_low")) is not None
                and _none(after.get("ci_high")) is not None
                and before["ci_low"] > after["ci_high"]
            )
            best = {
                "before": before["delay_bucket"],
                "after": after["delay_bucket"],
                "rate_before": a,
                "rate_after": b,
                "drop": drop,
                "intervals_separated": bool(separated),
            }
    return best


def bucket_label(bucket: str) -> str:
    """`15-30` -> `15–30 min`, `240-1440` -> `4–24 h`, `1440+` -> `1 day +`."""
    def one(minutes: str) -> str:
        value = float(minutes)
        if value >= 1440 and value % 1440 == 0:
            return f"{value / 1440:.0f} d"
        if value >= 120 and value % 60 == 0:
            return f"{value / 60:.0f} h"
        return f"{value:.0f} min"

    if bucket == "never":
        return "never reached"
    if bucket.endswith("+"):
        return one(bucket[:-1]) + " +"
    if "-" in bucket:
        low, high = bucket.split("-", 1)
        try:
            low_text, high_text = one(low), one(high)
        except ValueError:
            return bucket
        if low_text.split()[-1] == high_text.split()[-1]:
            return f"{low_text.split()[0]}–{high_text}"
        return f"{low_text}–{high_text}"
    return bucket


def conversion_by_delay(data: ReportData) -> tuple[Chart, dict | None]:
    title = "Conversion by time to first contact"
    frame = data.conversion[data.conversion["intent"] == "all"].sort_values(
        "delay_bucket_sort_order"
    )
    rows = []
    for rec in frame.to_dict("records"):
        rate = _none(rec.get("conversion_rate"))
        rows.append(
            {
                "bucket": bucket_label(rec["delay_bucket"]),
                "rate": rate,
                "low": _none(rec.get("ci_low")),
                "high": _none(rec.get("ci_high")),
                "episodes": int(rec.get("episodes") or 0),
                "conversions": _none(rec.get("conversions")),
                "confidence": "Low (few episodes)" if rec.get("low_confidence") else "Enough episodes",
                "label": fmt.pct(rate),
                "interval": f"{fmt.pct(_none(rec.get('ci_low')))} – {fmt.pct(_none(rec.get('ci_high')))}",
            }
        )
    cliff = find_cliff(data.conversion)
    if not rows or all(r["rate"] is None for r in rows):
        chart = _empty(
            "Conversion unknown: no CRM opportunities were loaded (unknown, not zero)", title
        )
        return Chart("conversion_by_delay", title, "", _config(chart).to_dict()), cliff
    chart_frame = pd.DataFrame(rows)
    order = list(chart_frame["bucket"])
    interval = _none(frame["interval"].iloc[0]) if "interval" in frame.columns else None
    interval_text = f"{interval:.0%}" if interval is not None else "80%"
    x = alt.X("bucket:O", sort=order, title="Time from first miss to first contact",
              axis=alt.Axis(labelAngle=0))
    base = alt.Chart(chart_frame, width=WIDTH, height=HEIGHT)
    bars = base.mark_bar(size=42).encode(
        x=x,
        y=alt.Y("rate:Q", title="Converted within the window", axis=alt.Axis(format=".0%")),
        color=alt.Color(
            "confidence:N",
            title=None,
            scale=alt.Scale(
                domain=["Enough episodes", "Low (few episodes)"],
                range=[PALETTE["blue"], PALETTE["light_blue"]],
            ),
        ),
        tooltip=[
            alt.Tooltip("bucket:O", title="First contact after"),
            alt.Tooltip("label:N", title="Conversion"),
            alt.Tooltip("interval:N", title=f"{interval_text} interval"),
            alt.Tooltip("episodes:Q", title="Episodes", format=","),
            alt.Tooltip("conversions:Q", title="Conversions", format=","),
        ],
    )
    rules = base.mark_rule(color="#222", strokeWidth=1.5).encode(x=x, y="low:Q", y2="high:Q")
    ticks_low = base.mark_tick(color="#222", width=14, thickness=1.5).encode(x=x, y="low:Q")
    ticks_high = base.mark_tick(color="#222", width=14, thickness=1.5).encode(x=x, y="high:Q")
    text = base.mark_text(dx=16, dy=-6, fontSize=11, align="left", color="#333").encode(
        x=x, y="rate:Q", text="label:N"
    )
    layers = [bars, rules, ticks_low, ticks_high, text]
    subtitle = (
        f"Whiskers: {interval_text} Wilson interval. Episodes in the revenue lookback, all intents."
    )
    if cliff:
        cliff_frame = pd.DataFrame(
            [
                {
                    "bucket": bucket_label(cliff["after"]),
                    "note": f"Conversion cliff: {fmt.pct(cliff['rate_before'])} → "
                    f"{fmt.pct(cliff['rate_after'])}",
                    "top": max(r["high"] or r["rate"] or 0 for r in rows),
                }
            ]
        )
        cliff_base = alt.Chart(cliff_frame)
        layers.append(
            cliff_base.mark_rule(
                color=PALETTE["red"], strokeDash=[6, 4], strokeWidth=2,
                xOffset=-round(WIDTH / len(order) / 2),
            ).encode(x=alt.X("bucket:O", sort=order))
        )
        layers.append(
            cliff_base.mark_text(
                color=PALETTE["red"], fontWeight="bold", fontSize=12, align="left",
                dx=-round(WIDTH / len(order) / 2) + 6, dy=-8
            ).encode(x=alt.X("bucket:O", sort=order), y=alt.Y("top:Q"), text="note:N")
        )
        subtitle += (
            f" Dashed red line: the biggest drop, after {bucket_label(cliff['before'])}."
        )
    chart = alt.layer(*layers).properties(title=alt.Title(title, subtitle=subtitle))
    return (
        Chart(
            "conversion_by_delay",
            title,
            "Share of missed-call episodes that turned into an opportunity, by how long the caller "
            "waited for a first contact. Pale bars rest on fewer episodes than the minimum sample.",
            _config(chart).to_dict(),
        ),
        cliff,
    )


# -- 5. revenue at risk ---------------------------------------------------------------------
def revenue_at_risk(data: ReportData, currency: str = fmt.CURRENCY) -> Chart:
    title = "Revenue at risk per week (all intents)"
    labels = _week_labels(data.week_starts)
    order = [labels[w] for w in data.week_starts]
    frame = data.revenue[data.revenue["intent"] == "all"]
    rows = []
    for rec in frame.to_dict("records"):
        if rec["week_start"] not in labels:
            continue
        low, mid, high = (_none(rec.get(f"revenue_at_risk_{k}")) for k in ("low", "mid", "high"))
        if mid is None:
            continue
        rows.append(
            {
                "week": labels[rec["week_start"]],
                "low": low,
                "mid": mid,
                "high": high,
                "mid_label": fmt.money(mid, currency),
                "range": fmt.money_range(low, high, currency),
                "breached": int(rec.get("breached_episodes") or 0),
            }
        )
    if not rows:
        chart = _empty(
            "Revenue at risk unknown: no CRM opportunities were loaded (unknown, not zero)", title
        )
        return Chart("revenue_at_risk", title, "", _config(chart).to_dict())
    chart_frame = pd.DataFrame(rows)
    x = _x_week(order)
    axis = alt.Axis(format="$,.0f" if currency == "$" else ",.0f")
    tooltip = [
        alt.Tooltip("week:O", title="Week starting"),
        alt.Tooltip("mid_label:N", title="Revenue at risk (mid)"),
        alt.Tooltip("range:N", title="Low – high"),
        alt.Tooltip("breached:Q", title="SLA-breached episodes", format=","),
    ]
    base = alt.Chart(chart_frame, width=WIDTH, height=HEIGHT)
    band = base.mark_area(opacity=0.3, color=PALETTE["orange"]).encode(
        x=x,
        y=alt.Y("low:Q", title=f"Revenue at risk ({currency})", axis=axis),
        y2="high:Q",
        tooltip=tooltip,
    )
    line = base.mark_line(
        point=alt.OverlayMarkDef(color=PALETTE["red"], size=50),
        color=PALETTE["red"],
        strokeWidth=2.5,
    ).encode(
        x=x, y="mid:Q", tooltip=tooltip
    )
    labels_layer = base.mark_text(dy=-14, fontSize=11, fontWeight="bold", color="#333").encode(
        x=x, y="mid:Q", text="mid_label:N"
    )
    chart = alt.layer(band, line, labels_layer).properties(
        title=alt.Title(
            title,
            subtitle="Line: central estimate; band: low to high estimate. From SLA-breached "
            "episodes of the week, priced at the conversion they lost.",
        )
    )
    return Chart(
        "revenue_at_risk",
        title,
        "Revenue at risk = for each SLA-breached episode, the conversion rate it lost against "
        "episodes contacted within SLA, times the value of a conversion. The band is the range "
        "the confidence intervals allow.",
        _config(chart).to_dict(),
    )


def build_charts(data: ReportData, currency: str = fmt.CURRENCY) -> tuple[list[Chart], dict | None]:
    conversion, cliff = conversion_by_delay(data)
    charts = [
        high_intent_misses(data),
        callback_delay(data),
        completion_vs_contact(data),
        conversion,
        revenue_at_risk(data, currency),
    ]
    return charts, cliff

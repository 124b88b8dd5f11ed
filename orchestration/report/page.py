"""The self-contained HTML page: Vega, Vega-Lite and vega-embed inlined, so it opens offline."""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from html import escape
from pathlib import Path

from orchestration.report import fmt
from orchestration.report.charts import Chart
from orchestration.report.data import QualityStatus, ReportData
from orchestration.report.summary import Summary

CSS = """
:root { --ink:#1d2330; --muted:#5b6270; --line:#dde1e6; --bad:#c62828; --good:#2e7d32; }
* { box-sizing: border-box; }
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1040px; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
.meta { color: var(--muted); font-size: 14px; margin-bottom: 16px; }
.meta b { color: var(--ink); }
.row { display: flex; gap: 16px; flex-wrap: wrap; }
.panel { border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; flex: 1 1 300px; }
.status { font-weight: bold; padding: 2px 10px; border-radius: 12px; color: #fff; font-size: 13px; }
.status.ok { background: var(--good); } .status.failed { background: var(--bad); }
.status.unknown { background: #8a8f98; }
.headline { font-size: 15px; line-height: 1.5; margin: 0 0 12px; padding-left: 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 22px; font-weight: bold; margin: 2px 0; }
.card .change { font-size: 13px; font-weight: bold; }
.card .change.worse { color: var(--bad); } .card .change.better { color: var(--good); }
.card .note { color: var(--muted); font-size: 12px; }
.card.spike { border-color: var(--bad); box-shadow: inset 4px 0 0 var(--bad); }
.tag { color: var(--bad); font-weight: bold; font-size: 12px; margin-left: 6px; }
.spikes { color: var(--bad); font-size: 14px; }
table.gates { border-collapse: collapse; width: 100%; font-size: 13px; }
table.gates th, table.gates td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line);
                                 vertical-align: top; }
table.gates td.fail { color: var(--bad); font-weight: bold; }
figure { margin: 18px 0 26px; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; max-width: 760px; }
figcaption a { color: var(--muted); }
.chart { min-height: 120px; }
.chart-error { color: var(--bad); font-weight: bold; }
footer { color: var(--muted); font-size: 12px; margin-top: 30px; }
"""


@lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (shipped inside vl-convert-python; nothing
    is fetched), defining window.vegaEmbed."""
    import altair as alt
    import vl_convert as vlc

    wanted = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]
    version = wanted if wanted in vlc.get_vegalite_versions() else None
    # bundling takes seconds: keep the result per vl-convert and Vega-Lite version
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = f"vl-convert-{getattr(vlc, '__version__', 'x')}-vl-{version or 'latest'}"
    cached = cache_root / "ringledger" / f"vega-bundle-{key}.js"
    try:
        text = cached.read_text(encoding="utf-8")
        if "vegaEmbed" in text:
            return text
    except OSError:
        pass
    text = _script_safe(vlc.javascript_bundle(vl_version=version))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".vega-bundle.", dir=cached.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, cached)
    except OSError:
        pass  # no writable cache: bundle again next time
    return text


def _script_safe(text: str) -> str:
    # a "</script" inside a script element would end it early
    return text.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def _quality_block(data: ReportData) -> str:
    q: QualityStatus = data.quality
    marts_line = (
        f"<p>Published marts as of <b>{escape(fmt.instant(data.as_of))}</b> "
        f"(file written {escape(fmt.instant(data.published_at))}).</p>"
    )
    if not q.found:
        reason = f" ({escape(q.error)})" if q.error else ""
        return (
            '<div class="panel" id="quality">'
            '<div><span class="status unknown">GATES UNKNOWN</span></div>'
            f"{marts_line}<p>No gate results found at <code>{escape(str(q.path))}</code>{reason}.</p>"
            "</div>"
        )
    if q.passed:
        badge = '<span class="status ok">ALL GATES PASSED</span>'
        if q.marts_from_latest_run is False:
            text = (
                "<p>The latest run passed its gates but did not publish (a later step failed): "
                "the marts below are from an earlier run.</p>"
            )
        else:
            text = "<p>The marts below come from the latest run.</p>"
    else:
        failed = len(q.failed_gates)
        badge = f'<span class="status failed">LATEST RUN FAILED {failed} GATE{"S" if failed != 1 else ""}</span>'
        text = (
            "<p><b>The latest run was stopped by its data-quality gates and published nothing.</b> "
            "The charts show the marts as they were before it.</p>"
        )
    rows = []
    for gate in q.gates:
        ok = bool(gate.get("passed"))
        rows.append(
            "<tr>"
            f"<td>{escape(str(gate.get('gate')))}</td>"
            f"<td class=\"{'' if ok else 'fail'}\">{'passed' if ok else 'FAILED'}</td>"
            f"<td>{escape(fmt.measured(gate.get('measured_value')))}</td>"
            f"<td>{escape(str(gate.get('threshold') or ''))}</td>"
            f"<td>{escape(str(gate.get('detail') or ''))}</td>"
            "</tr>"
        )
    table = (
        '<table class="gates"><thead><tr><th>gate</th><th>status</th><th>measured</th>'
        "<th>threshold</th><th>detail</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    return (
        '<div class="row">'
        '<div class="panel" id="marts-status"><div><b>Published marts</b></div>'
        f"{marts_line}</div>"
        f'<div class="panel" id="quality"><div><b>Latest run</b> {badge}</div>'
        f"<p>Checked {escape(fmt.instant(q.checked_at))} (run {escape(str(q.run_id)[:8])}).</p>"
        f"{text}</div></div>{table}"
    )


def _summary_block(summary: Summary) -> str:
    week = f"Week of {escape(summary.week_label)}"
    if summary.partial_week:
        week += " (in progress: up to the as-of time)"
    compare = f" compared with the week of {escape(summary.previous_label)}" if summary.previous_label else ""
    cards = []
    for item in summary.items:
        spike = item.note == "SPIKE"
        note = '<span class="tag">SPIKE</span>' if spike else ""
        cards.append(
            f'<div class="card{" spike" if spike else ""}">'
            f'<div class="label">{escape(item.label)}{note}</div>'
            f'<div class="value">{escape(item.value)}</div>'
            f'<div class="change {item.tone}">{escape(item.change) or "&nbsp;"}</div>'
            f'<div class="note">{"" if spike else escape(item.note)}</div>'
            "</div>"
        )
    headline = "".join(f"<li>{escape(line)}</li>" for line in summary.headline)
    spikes = (
        '<p class="spikes"><b>Spikes:</b> ' + "; ".join(escape(s) for s in summary.spikes) + "</p>"
        if summary.spikes
        else '<p class="meta">No high-intent spike in the window.</p>'
    )
    return (
        f'<section id="summary"><h2>Summary: {week}</h2>'
        f'<p class="meta">Changes{compare}; red is worse for the business, green better.</p>'
        f'<ul class="headline">{headline}</ul><div class="cards">{"".join(cards)}</div>{spikes}'
        "</section>"
    )


def render_page(
    data: ReportData, summary: Summary, charts: list[Chart], png_names: dict[str, str]
) -> str:
    specs = {chart.name: chart.spec for chart in charts}
    figures = []
    for chart in charts:
        png = png_names.get(chart.name)
        link = f' <a href="{escape(png)}">PNG</a>' if png else ""
        figures.append(
            f'<figure><div class="chart" id="chart-{escape(chart.name)}" '
            f'data-chart="{escape(chart.name)}" role="img" aria-label="{escape(chart.title)}"></div>'
            f"<figcaption>{escape(chart.caption)}{link}</figcaption></figure>"
        )
    specs_json = _script_safe(json.dumps(specs, default=str))
    weeks = data.week_starts
    window = f"{fmt.day(weeks[0])} – {fmt.day(weeks[-1])}" if weeks else fmt.MISSING
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ringledger weekly report – week of {escape(summary.week_label)}</title>
<style>{CSS}</style>
<script>{vega_bundle()}</script>
</head>
<body>
<header>
<h1>Missed calls and revenue at risk: weekly report</h1>
<div class="meta">Weeks <b>{escape(window)}</b> · data as of <b>{escape(fmt.instant(data.as_of))}</b>
 · from <code>{escape(data.marts_path.name)}</code> (published marts, read-only)</div>
</header>
<section id="data-quality"><h2>Data quality</h2>{_quality_block(data)}</section>
{_summary_block(summary)}
<section id="charts"><h2>Charts</h2>
{"".join(figures)}
</section>
<footer>Built by <code>ringledger report</code> from the published marts. Definitions: docs/metrics.md.
Charts: Vega-Lite, embedded in this file (works offline).</footer>
<script>
(function () {{
  const specs = {specs_json};
  const names = Object.keys(specs);
  document.body.dataset.chartsExpected = String(names.length);
  const jobs = names.map(function (name) {{
    const el = document.getElementById("chart-" + name);
    return vegaEmbed(el, specs[name], {{ actions: false, renderer: "svg" }})
      .then(function () {{ el.dataset.rendered = "true"; return true; }})
      .catch(function (error) {{
        el.dataset.rendered = "false";
        el.innerHTML = '<p class="chart-error">This chart could not be drawn: ' + String(error) + "</p>";
        console.error("chart " + name + " failed: " + error);
        return false;
      }});
  }});
  Promise.all(jobs).then(function (results) {{
    document.body.dataset.chartsRendered = String(results.filter(Boolean).length);
    document.body.dataset.chartsDone = "true";
  }});
}})();
</script>
</body>
</html>
"""

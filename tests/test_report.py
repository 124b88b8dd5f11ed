"""The weekly report, the dbt docs and the BI guide's queries, on the session's sample run."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from orchestration import project
from orchestration.publish import quality_json_path
from orchestration.report import REPORT_FILE, ReportError, build_report, fmt
from orchestration.report.charts import bucket_label, find_cliff

CHARTS = (
    "high_intent_misses",
    "callback_delay",
    "completion_vs_contact",
    "conversion_by_delay",
    "revenue_at_risk",
)
BI_GUIDE = project.REPO_ROOT / "docs" / "bi.md"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def weekly_report(pipeline_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    before = _sha(pipeline_run.marts)
    result = build_report(pipeline_run.marts, out, weeks=12)
    assert _sha(pipeline_run.marts) == before, "the report must not change the published file"
    return result


# -- formatting --------------------------------------------------------------------------
def test_numbers_are_formatted_for_people():
    assert fmt.money(1234.4) == "$1,234"
    assert fmt.money(2_500_000) == "$2.5M"
    assert fmt.money_range(900, 15_000) == "$900 – $15,000"
    assert fmt.pct(0.4567) == "46%"
    assert fmt.pct(0.4567, 1) == "45.7%"
    assert fmt.pct_points(-0.035) == "-3.5 pts"
    assert fmt.signed_pct(0.53) == "+53%"
    assert fmt.duration(45) == "45 min"
    assert fmt.duration(150) == "2.5 h"
    assert fmt.duration(4320) == "3.0 days"
    assert fmt.money(None) == fmt.pct(float("nan")) == fmt.MISSING


def test_delay_bucket_labels():
    assert bucket_label("0-5") == "0–5 min"
    assert bucket_label("60-120") == "60 min–2 h"
    assert bucket_label("240-1440") == "4 h–1 d"
    assert bucket_label("1440+") == "1 d +"
    assert bucket_label("never") == "never reached"


def test_cliff_is_the_largest_drop_between_consecutive_buckets():
    frame = pd.DataFrame(
        {
            "intent": ["all"] * 5,
            "delay_bucket": ["0-5", "5-15", "15-30", "30-60", "never"],
            "delay_bucket_sort_order": [1, 2, 3, 4, 5],
            "conversion_rate": [0.50, 0.45, 0.20, 0.25, 0.01],
            "ci_low": [0.45, 0.40, 0.15, 0.20, 0.0],
            "ci_high": [0.55, 0.50, 0.25, 0.30, 0.02],
        }
    )
    cliff = find_cliff(frame)
    assert (cliff["before"], cliff["after"]) == ("5-15", "15-30")  # `never` is not a cliff
    assert cliff["drop"] == pytest.approx(0.25)
    assert cliff["intervals_separated"] is True
    unknown = frame.assign(conversion_rate=None)
    assert find_cliff(unknown) is None


# -- the report --------------------------------------------------------------------------
def test_report_page_is_self_contained(weekly_report):
    html = weekly_report.html_path.read_text()
    assert weekly_report.html_path.name == REPORT_FILE
    # no external script, stylesheet or image: the page opens offline
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=", html)
    assert not re.search(r"""src=["']https?:""", html)
    assert "vegaEmbed" in html and "vega-lite" in html.lower()
    for name in CHARTS:
        assert f'id="chart-{name}"' in html
    assert "Conversion cliff" in html


def test_report_pngs_beside_the_page(weekly_report):
    assert set(weekly_report.png_paths) == set(CHARTS)
    for path in weekly_report.png_paths.values():
        assert path.parent == weekly_report.html_path.parent
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 20_000, f"{path.name} looks empty"


def test_report_summary_matches_the_marts(weekly_report, pipeline_run):
    with duckdb.connect(str(pipeline_run.marts), read_only=True) as con:
        latest = con.execute(
            "select week_start, high_intent_episodes, sla_breach_rate "
            "from marts.mart_weekly_summary order by week_start desc limit 1"
        ).fetchone()
        weeks = con.execute("select count(*) from marts.mart_weekly_summary").fetchone()[0]
    summary = weekly_report.summary
    assert summary.week_label == fmt.day(latest[0])
    items = {item.label: item for item in summary.items}
    assert items["High-intent episodes"].value == fmt.count(latest[1])
    assert items["SLA breach rate"].value == fmt.pct(latest[2], 1)
    assert len(weekly_report.data.week_starts) == min(12, weeks)
    html = weekly_report.html_path.read_text()
    assert "ALL GATES PASSED" in html  # the session run passed its gates
    assert fmt.instant(weekly_report.data.as_of) in html


def test_report_respects_weeks(pipeline_run, tmp_path):
    result = build_report(pipeline_run.marts, tmp_path, weeks=2)
    assert len(result.data.week_starts) == 2


def test_failed_latest_run_shows_its_gates_beside_the_marts_as_of(pipeline_run, tmp_path):
    """A failed run publishes nothing: the report shows the marts as they were and, beside
    them, the failed gates of the latest run from <stem>.quality.json."""
    marts = tmp_path / "published" / "ringledger.duckdb"
    marts.parent.mkdir()
    shutil.copy(pipeline_run.marts, marts)
    quality_json_path(marts).write_text(
        json.dumps(
            {
                "run_id": "later-run-that-failed",
                "checked_at": "2030-01-02T03:04:05",
                "passed": False,
                "gates": [
                    {"gate": "clock_sync", "passed": False, "measured_value": 431.5,
                     "threshold": "<= 120 s", "detail": "CRM clock 7 minutes ahead on 2025-01-07"},
                    {"gate": "deduplication", "passed": True, "measured_value": 0,
                     "threshold": "0", "detail": "ok"},
                ],
            }
        )
    )
    result = build_report(marts, tmp_path / "out")
    quality = result.data.quality
    assert quality.found and quality.passed is False
    assert quality.marts_from_latest_run is False
    assert [g["gate"] for g in quality.failed_gates] == ["clock_sync"]
    html = result.html_path.read_text()
    assert "LATEST RUN FAILED 1 GATE" in html
    assert "clock_sync" in html and "431.5" in html and "CRM clock 7 minutes ahead" in html
    assert "Published marts as of" in html and fmt.instant(result.data.as_of) in html


def test_report_without_quality_file_says_so(pipeline_run, tmp_path):
    marts = tmp_path / "ringledger.duckdb"
    shutil.copy(pipeline_run.marts, marts)
    result = build_report(marts, tmp_path / "out")
    assert not result.data.quality.found
    assert "GATES UNKNOWN" in result.html_path.read_text()


def test_report_never_reads_the_warehouse(pipeline_run, tmp_path):
    with pytest.raises(ReportError, match="never the warehouse"):
        build_report(pipeline_run.warehouse, tmp_path)
    with pytest.raises(ReportError, match="no published marts"):
        build_report(tmp_path / "missing.duckdb", tmp_path)


def test_report_command(pipeline_run, tmp_path):
    from orchestration.cli import main

    runner = CliRunner()
    result = runner.invoke(
        main, ["report", "--marts", str(pipeline_run.marts), "--out", str(tmp_path), "--weeks", "3"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / REPORT_FILE).exists()
    assert "latest run passed every gate" in result.output
    missing = runner.invoke(main, ["report", "--marts", str(tmp_path / "x.duckdb"), "--out", str(tmp_path)])
    assert missing.exit_code == 2
    assert "no published marts" in missing.output


def test_report_asset_ran_after_publication(pipeline_run):
    """`weekly_report` is part of the everything job: the session run built it beside the
    published file."""
    page = pipeline_run.marts.parent / "report" / REPORT_FILE
    assert page.exists()
    assert all((page.parent / f"{name}.png").exists() for name in CHARTS)


def test_report_asset_definition():
    from dagster import AssetKey

    from orchestration.definitions import defs

    spec = defs.resolve_assets_def("weekly_report").specs_by_key[AssetKey(["weekly_report"])]
    assert spec.group_name == "report"
    assert AssetKey(["published_marts"]) in {dep.asset_key for dep in spec.deps}


# -- BI guide ----------------------------------------------------------------------------
def _guide_queries() -> dict[str, str]:
    blocks = re.findall(r"```sql\n(.*?)```", BI_GUIDE.read_text(), re.DOTALL)
    queries = {}
    for block in blocks:
        match = re.match(r"-- query: (\w+)", block)
        assert match, f"every SQL block of docs/bi.md starts with '-- query: name':\n{block}"
        queries[match.group(1)] = block
    return queries


def test_bi_guide_queries_run_on_the_published_file(pipeline_run):
    queries = _guide_queries()
    assert {
        "revenue_at_risk_last_quarter_by_intent",
        "sla_breaches_by_owner",
        "worst_sla_breaches",
        "conversion_cliff",
    } <= set(queries)
    with duckdb.connect(str(pipeline_run.marts), read_only=True) as con:
        results = {name: con.execute(sql).df() for name, sql in queries.items()}
        revenue_all = con.execute(
            "select sum(revenue_at_risk_mid) from marts.mart_revenue_at_risk "
            "where intent = 'all' and week_start > "
            "(select cast(max(as_of_utc) as date) from marts.mart_revenue_at_risk) - interval 13 weeks"
        ).fetchone()[0]
        breached = con.execute(
            "select count(*) from marts.fct_missed_call_episodes "
            "where not is_noise and sla_status = 'breached'"
        ).fetchone()[0]
        conversion = con.execute("select * from marts.mart_conversion_by_delay_bucket").df()
    revenue = results["revenue_at_risk_last_quarter_by_intent"]
    assert not revenue.empty and "all" not in set(revenue["intent"])
    assert (revenue["revenue_at_risk_low"] <= revenue["revenue_at_risk_mid"]).all()
    assert (revenue["revenue_at_risk_mid"] <= revenue["revenue_at_risk_high"]).all()
    # the intent rows add up to the mart's `all` rows (rounding aside)
    assert revenue["revenue_at_risk_mid"].sum() == pytest.approx(revenue_all, abs=len(revenue))

    owners = results["sla_breaches_by_owner"]
    assert not owners.empty
    assert owners["breaches"].sum() == breached
    assert (owners["breach_rate"].between(0, 1)).all()
    worst = results["worst_sla_breaches"]
    assert 0 < len(worst) <= 20
    assert list(worst["overdue_business_minutes"]) == sorted(
        worst["overdue_business_minutes"], reverse=True
    )
    assert (worst["overdue_business_minutes"] >= 0).all()

    cliff = results["conversion_cliff"].set_index("intent")
    expected = find_cliff(conversion)
    assert expected is not None
    assert cliff.loc["all", "faster_bucket"] == expected["before"]
    assert cliff.loc["all", "slower_bucket"] == expected["after"]


def test_bi_guide_opens_the_file_read_only():
    text = BI_GUIDE.read_text()
    for tool in ("DBeaver", "Superset", "Metabase", "Evidence"):
        assert tool in text
    assert "access_mode=READ_ONLY" in text and "read_only" in text
    assert "warehouse.duckdb" in text  # says which file never to point at


# -- dbt docs ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def dbt_docs(pipeline_run, tmp_path_factory) -> Path:
    """`dbt docs generate` against a copy of the session's warehouse, into a temp target."""
    root = tmp_path_factory.mktemp("dbt_docs")
    warehouse = root / "warehouse.duckdb"
    shutil.copy(pipeline_run.warehouse, warehouse)
    target = root / "target"
    env = dict(os.environ, RINGLEDGER_WAREHOUSE=str(warehouse))
    env.pop("RINGLEDGER_SEED_DIR", None)
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"), "docs", "generate",
            "--project-dir", str(project.REPO_ROOT), "--profiles-dir", str(project.REPO_ROOT),
            "--target-path", str(target),
        ],
        cwd=project.REPO_ROOT, env=env, capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    for name in ("index.html", "manifest.json", "catalog.json"):
        assert (target / name).exists(), name
    return target


def _undocumented(target: Path, layers: tuple[str, ...] | None) -> list[str]:
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    problems = []
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] not in ("model", "seed") or node["package_name"] != "ringledger":
            continue
        folder = node["fqn"][1] if node["resource_type"] == "model" else "seeds"
        if layers is not None and folder not in layers:
            continue
        if not (node.get("description") or "").strip():
            problems.append(f"{uid}: no description")
        documented = {
            name.lower() for name, col in node["columns"].items()
            if (col.get("description") or "").strip()
        }
        for column in catalog["nodes"].get(uid, {}).get("columns", {}):
            if column.lower() not in documented:
                problems.append(f"{uid}.{column}: no description")
    return problems


def test_dbt_docs_bi_facing_models_and_seeds_fully_documented(dbt_docs):
    """Every column a BI user or a configurer sees (marts, restricted, seeds) is described."""
    problems = _undocumented(dbt_docs, ("marts", "restricted", "seeds"))
    assert not problems, "\n".join(problems)


def test_dbt_docs_every_model_has_a_description(dbt_docs):
    manifest = json.loads((dbt_docs / "manifest.json").read_text())
    missing = [
        uid for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed") and node["package_name"] == "ringledger"
        and not (node.get("description") or "").strip()
    ]
    assert not missing, missing


def test_dbt_docs_every_column_documented(dbt_docs):
    """Every model column in the catalog has a description in the manifest, in every layer."""
    problems = _undocumented(dbt_docs, None)
    assert problems == [], f"{len(problems)} columns undocumented, e.g. {problems[:5]}"


def test_dbt_docs_exposures(dbt_docs):
    manifest = json.loads((dbt_docs / "manifest.json").read_text())
    exposures = manifest["exposures"]
    report = exposures["exposure.ringledger.weekly_report"]
    finance = exposures["exposure.ringledger.finance_revenue_at_risk"]
    assert "model.ringledger.mart_weekly_summary" in report["depends_on"]["nodes"]
    assert "model.ringledger.mart_revenue_at_risk" in finance["depends_on"]["nodes"]
    assert report["description"].strip() and finance["description"].strip()


def test_every_dbt_var_is_documented():
    """Each var in dbt_project.yml sits under a comment (a group of vars may share one)."""
    lines = project.DBT_PROJECT_FILE.read_text().splitlines()
    start = lines.index("vars:")
    names = list(yaml.safe_load(project.DBT_PROJECT_FILE.read_text())["vars"])
    undocumented = []
    for name in names:
        index = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"{name}:"))
        j = index - 1
        while j > start and re.match(r"^\s+\w+:", lines[j]):
            j -= 1  # walk up over the other vars of the same group
        if not lines[j].strip().startswith("#"):
            undocumented.append(name)
    assert not undocumented, undocumented

"""The `ringledger` command: generate, run, demo, holidays."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path

import click
import duckdb
from rich.console import Console
from rich.table import Table

from orchestration import project
from orchestration.config import ConfigError, load_config
from orchestration.runner import EXIT_USAGE, RunOutcome, run_pipeline

err = Console(stderr=True)
# the summary table stays readable when standard output is a file or a pipe
out = Console() if sys.stdout.isatty() else Console(width=160)


def _path_option(name: str, env: str, help_text: str, **kwargs):
    return click.option(
        name,
        envvar=env,
        type=click.Path(path_type=Path),
        default=None,
        show_envvar=True,
        help=help_text,
        **kwargs,
    )


@click.group()
@click.version_option(package_name="ringledger")
def main() -> None:
    """ringledger: what unanswered phone calls cost you, from your own exports."""


# -- generate ---------------------------------------------------------------------------
@main.command()
@_path_option("--out", "RINGLEDGER_LANDING_DIR", "Landing directory to write into.")
@click.option("--days", type=int, default=90, show_default=True)
@click.option("--calls-per-day", type=int, default=150, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default="2025-01-06",
    show_default=True,
    help="First day (a fixed date: the output depends only on the arguments).",
)
@click.option(
    "--telephony-format",
    type=click.Choice(["generic", "asterisk", "twilio"]),
    default="generic",
    show_default=True,
)
@click.option("--inject", multiple=True, help="Named fault to add (repeatable).")
def generate(out, days, calls_per_day, seed, start, telephony_format, inject) -> None:
    """Write realistic, deterministic sample exports into the landing directory."""
    from orchestration.generator import generate as generate_exports

    target = (out or project.landing_dir()).resolve()
    try:
        summary = generate_exports(
            target,
            days=days,
            calls_per_day=calls_per_day,
            seed=seed,
            start=start.date() if isinstance(start, datetime) else start,
            telephony_format=telephony_format,
            inject=list(inject),
            progress=True,
        )
    except (ValueError, NotImplementedError) as error:
        err.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_USAGE)
    err.print(f"wrote sample exports to {target}")
    for key, value in summary.items():
        err.print(f"  {key}: {value}")


# -- run ----------------------------------------------------------------------------------
def _report(outcome: RunOutcome) -> None:
    for name, reason in outcome.refused_files:
        err.print(f"REFUSED {name}: {reason}")
    for failure in outcome.gate_failures:
        err.print(failure.line())
    for message in outcome.errors:
        err.print(f"[red]error:[/red] {message}")
    if outcome.published:
        err.print(f"published marts to {outcome.marts_path}")
    elif outcome.exit_code not in (0, 4):
        err.print("nothing published; the published marts file is unchanged")


def print_weekly_summary(marts_path: Path, weeks: int = 12) -> None:
    """The weekly summary table from the published marts file (read-only)."""
    if not marts_path.exists():
        err.print(f"no published marts at {marts_path}")
        return
    with duckdb.connect(str(marts_path), read_only=True) as con:
        tables = {
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        if "mart_weekly_summary" in tables:
            query = """
                select week_start, episodes, high_intent_share, callback_completion_rate,
                       p50_attempt_minutes, p90_attempt_minutes, sla_breach_rate,
                       revenue_at_risk_low, revenue_at_risk_high, is_spike
                from marts.mart_weekly_summary order by week_start desc limit ?
            """
            columns = [
                "week", "episodes", "high-intent", "completion", "p50 attempt",
                "p90 attempt", "SLA breach", "at risk (low-high)", "spike",
            ]
            rows = con.execute(query, [weeks]).fetchall()
            formatted = [
                [
                    str(r[0]),
                    _fmt_int(r[1]),
                    _fmt_pct(r[2]),
                    _fmt_pct(r[3]),
                    _fmt_minutes(r[4]),
                    _fmt_minutes(r[5]),
                    _fmt_pct(r[6]),
                    f"{_fmt_money(r[7])} - {_fmt_money(r[8])}",
                    "yes" if r[9] else "",
                ]
                for r in reversed(rows)
            ]
        else:
            query = """
                select week_start,
                       count(*) filter (where is_inbound) as inbound_calls,
                       count(*) filter (where is_inbound and is_answered) as answered_calls,
                       count(*) filter (where is_missed) as missed_calls
                from marts.fct_calls group by week_start order by week_start desc limit ?
            """
            columns = ["week", "inbound calls", "answered", "missed"]
            rows = con.execute(query, [weeks]).fetchall()
            formatted = [[str(r[0]), *(_fmt_int(v) for v in r[1:])] for r in reversed(rows)]
    table = Table(title="ringledger weekly summary")
    for column in columns:
        table.add_column(column, justify="left" if column == "week" else "right")
    for row in formatted:
        table.add_row(*row)
    out.print(table)


def _fmt_int(value) -> str:
    return "-" if value is None else f"{int(value):,}"


def _fmt_pct(value) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _fmt_minutes(value) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"


def _fmt_money(value) -> str:
    return "-" if value is None else f"${value:,.0f}"


def _run_and_report(landing, warehouse, marts, config_dir, engine) -> int:
    with err.status(f"running the pipeline (ingest, dbt build on {engine}, publish)..."):
        outcome = run_pipeline(landing, warehouse, marts, config_dir, engine=engine)
    _report(outcome)
    if outcome.published:
        print_weekly_summary(outcome.marts_path)
    err.print(f"exit code {outcome.exit_code}")
    return outcome.exit_code


def _run_options(func):
    func = click.option(
        "--engine",
        envvar="RINGLEDGER_ENGINE",
        type=click.Choice(["duckdb", "spark"]),
        default="duckdb",
        show_default=True,
    )(func)
    func = _path_option("--config", "RINGLEDGER_CONFIG_DIR", "Your seeds (CSV) and vars.yml.")(func)
    func = _path_option("--marts", "RINGLEDGER_MARTS", "Published marts file.")(func)
    func = _path_option("--warehouse", "RINGLEDGER_WAREHOUSE", "Warehouse DuckDB file.")(func)
    func = _path_option("--landing", "RINGLEDGER_LANDING_DIR", "Landing directory.")(func)
    return func


@main.command()
@_run_options
def run(landing, warehouse, marts, config, engine) -> None:
    """Ingest the landing directory, build, gate and publish the marts."""
    sys.exit(_run_and_report(landing, warehouse, marts, config, engine))


@main.command()
@_run_options
def demo(landing, warehouse, marts, config, engine) -> None:
    """Generate 90 days of sample exports if the landing directory is empty, run, summarize."""
    from orchestration.generator import generate as generate_exports

    target = (landing or project.landing_dir()).resolve()
    has_files = target.exists() and any(p.is_file() for p in target.rglob("*"))
    if not has_files:
        err.print(f"landing directory {target} is empty: generating 90 days of sample exports")
        generate_exports(target, days=90, progress=True)
    sys.exit(_run_and_report(target, warehouse, marts, config, engine))


# -- holidays --------------------------------------------------------------------------
@main.command()
@click.option("--years", default=None, help="Range Y1-Y2 (default: two years ago to next year).")
@_path_option("--config", "RINGLEDGER_CONFIG_DIR", "Write DIR/holidays.csv for the sites there.")
def holidays(years, config) -> None:
    """Regenerate the holidays seed from the holidays package for the sites in force."""
    from orchestration.holiday_calendar import default_years, write_holidays_seed

    try:
        cfg = load_config(config)
    except ConfigError as error:
        err.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_USAGE)
    if years:
        try:
            first, last = (int(x) for x in years.split("-"))
        except ValueError:
            err.print(f"[red]error:[/red] --years must look like 2024-2027, got {years!r}")
            sys.exit(EXIT_USAGE)
        span = range(first, last + 1)
    else:
        span = default_years(date.today())
    target = (config / "holidays.csv") if config else project.SEEDS_DIR / "holidays.csv"
    count = write_holidays_seed(cfg, span, target)
    err.print(f"wrote {count} holidays for {span.start}-{span.stop - 1} to {target}")


# -- report ----------------------------------------------------------------------------
@main.command()
@click.option("--weeks", type=click.IntRange(min=1), default=12, show_default=True,
              help="How many of the latest weeks to chart.")
@_path_option("--marts", "RINGLEDGER_MARTS", "Published marts file to read (read-only).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Directory for weekly_report.html and the PNG charts.")
def report(weeks, marts, out_dir) -> None:
    """Weekly report (one offline HTML page + PNG charts) from the published marts file."""
    from rich.progress import BarColumn, Progress, TextColumn

    from orchestration.report import ReportError, build_report
    from orchestration.report.fmt import instant as _fmt_instant

    marts_path = (marts or project.marts_path()).resolve()
    steps = 7  # read + five charts + page
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            console=err, transient=True,
        ) as bar:
            task = bar.add_task("report", total=steps)

            def advance(message: str) -> None:
                bar.update(task, description=message, advance=1)

            result = build_report(marts_path, out_dir.resolve(), weeks=weeks, progress=advance)
    except ReportError as error:
        err.print(f"[red]error:[/red] {error}")
        sys.exit(EXIT_USAGE)
    quality = result.data.quality
    if not quality.found:
        gates = "gate results not found"
    elif quality.passed:
        gates = "latest run passed every gate"
    else:
        failed = ", ".join(g["gate"] for g in quality.failed_gates)
        gates = f"latest run FAILED gates: {failed} (marts shown as they were before it)"
    err.print(f"wrote {result.html_path}")
    for path in result.png_paths.values():
        err.print(f"  {path.name}")
    err.print(f"marts as of {_fmt_instant(result.data.as_of)} · {len(result.data.week_starts)} weeks · {gates}")
    for line in result.summary.headline:
        err.print(f"  {line}")


# -- bench -----------------------------------------------------------------------------
@main.command()
@click.option("--legs", type=click.IntRange(min=100), default=1_000_000, show_default=True,
              help="About how many call legs to generate (once, then cached) and run.")
@click.option("--cache", type=click.Path(path_type=Path), default=None,
              help="Landing cache directory (default: benchmarks/cache/<legs>).")
@click.option("--keep", is_flag=True, help="Keep the benchmark's warehouse and marts files.")
@click.option("--day", is_flag=True,
              help="Time the incremental daily load instead: a full run of every day but the "
              "last, then the last day's files added and run again.")
def bench(legs, cache, keep, day) -> None:
    """Time a full run on N generated legs: stages, peak memory, ratio to a bare scan."""
    from orchestration.bench import RESULTS_FILE, format_table, run_benchmark, run_day_benchmark

    measure = run_day_benchmark if day else run_benchmark
    result = measure(legs, cache=cache, keep=keep, progress=True)
    out.print(format_table(result.record))
    if result.workdir is not None:
        err.print(f"kept the warehouse and marts in {result.workdir}")
    err.print(f"appended to {RESULTS_FILE}")
    sys.exit(0 if result.record["exit_code"] in (0, 4) else 1)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

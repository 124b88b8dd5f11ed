"""Data-quality gates (metrics.md section 7), each a Great Expectations 1.x validation.

Each gate reads a compact frame from DuckDB (aggregates per source and day, or counts; never
the leg table itself), validates it with an ephemeral GX `ValidationDefinition`, and returns a
`GateResult` with the measured value and the threshold. Thresholds come from the dbt vars in
force (`Config.vars`): the one source of truth shared with the dbt models.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from orchestration.config import Config

log = logging.getLogger(__name__)

GATES = (
    "clock_sync",
    "timezone_offset",
    "future_timestamps",
    "number_normalization",
    "crm_number_normalization",
    "deduplication",
    "tracking_numbers",
)

# Where a median skew counts as a whole-hours offset: within this many seconds of one.
# A definition of the spec (section 7), not a tunable business threshold.
WHOLE_HOUR_MARGIN_SECONDS = 60


@dataclass
class GateResult:
    gate: str
    passed: bool
    measured_value: float | None
    threshold: str
    detail: str
    examples: list[str] = field(default_factory=list)
    frame_rows: int = 0
    # the rows a gate read when not every row (check metadata and the run log only: the
    # results table stays the same from one run to the next)
    scope: str = ""

    def measured_text(self) -> str:
        if self.measured_value is None:
            return "none"
        value = self.measured_value
        return f"{value:g}" if isinstance(value, float) else str(value)

    def failure_line(self) -> str:
        return (
            f"GATE {self.gate} failed: measured {self.measured_text()}, threshold "
            f"{self.threshold}: {self.detail}"
        )


# -- Great Expectations -------------------------------------------------------------------
_prefetch: threading.Thread | None = None


def _import_quietly(module: str) -> None:
    try:
        importlib.import_module(module)
    except BaseException as error:  # the gates import it again and report the error there
        log.debug("prefetching %s failed: %r", module, error)


def prefetch_great_expectations() -> threading.Thread:
    """Import Great Expectations in a background thread (~3 s of Python imports), so that
    the gates, which run after the ingest and the models build in the same process, find it
    loaded. Started by the ingest asset; the gates' own import waits for it (Python's import
    lock), so this can only save time. Once per process."""
    global _prefetch
    if _prefetch is None:
        _prefetch = threading.Thread(
            target=_import_quietly,
            args=("great_expectations",),
            name="prefetch-great-expectations",
            daemon=True,
        )
        _prefetch.start()
    return _prefetch


class _Validator:
    """One ephemeral GX context per gate run (cheap, in memory, no files)."""

    def __init__(self) -> None:
        import great_expectations as gx

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        try:
            self.context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(
                globally=False
            )
        except Exception:  # pragma: no cover - cosmetic only
            pass
        self.source = self.context.data_sources.add_pandas("ringledger_gates")

    def validate(self, name: str, frame: pd.DataFrame, expectations: list[Any]) -> Any:
        gx = self.gx
        asset = self.source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}_frame")
        suite = self.context.suites.add(gx.ExpectationSuite(name=name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        return definition.run(batch_parameters={"dataframe": frame})


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def mask_number(raw: str | None) -> str:
    """All but the last 2 digits masked, so failing examples carry no personal data."""
    text = "" if raw is None else str(raw)
    digits_seen = sum(ch.isdigit() for ch in text)
    out, kept = [], 0
    for ch in text:
        if ch.isdigit():
            kept += 1
            out.append(ch if kept > digits_seen - 2 else "#")
        elif ch.isalpha():
            out.append("*")
        else:
            out.append(ch)
    return "".join(out)


# -- clock skew frames -------------------------------------------------------------------
_SKEW_SQL = """
-- pairs of a CRM activity and the PBX call it references (the same pairing the metrics use)
select source_system,
       cast(call_started_at_utc as date) as pbx_date,
       count(*) as pairs,
       median(abs(epoch_us(logged_at_utc) - epoch_us(call_started_at_utc)) / 1e6) as median_abs_skew_seconds,
       median((epoch_us(logged_at_utc) - epoch_us(call_started_at_utc)) / 1e6) as median_skew_seconds
from intermediate.int_crm_activity_calls_linked
where logged_at_utc is not null
group by all
order by source_system, pbx_date
"""


def _skew_frame(con) -> pd.DataFrame:
    return _frame(con, _SKEW_SQL)


def gate_clock_sync(con, config: Config, validator: _Validator, **_) -> GateResult:
    tolerance = float(config.vars["clock_skew_tolerance_seconds"])
    frame = _skew_frame(con)
    threshold = f"<= {tolerance:g} s median absolute skew per source and day"
    if frame.empty:
        return GateResult("clock_sync", True, None, threshold, "no data")
    result = validator.validate(
        "clock_sync",
        frame,
        [validator.gx.expectations.ExpectColumnValuesToBeBetween(
            column="median_abs_skew_seconds", min_value=0, max_value=tolerance)],
    )
    worst = frame.sort_values("median_abs_skew_seconds", ascending=False).iloc[0]
    bad = frame[frame["median_abs_skew_seconds"] > tolerance]
    detail = (
        f"{len(bad)} of {len(frame)} source-days over tolerance, worst {worst.source_system} "
        f"{worst.pbx_date}: CRM clock vs PBX clock; check the CRM/CTI server's NTP sync"
        if not result.success
        else f"{len(frame)} source-days, {int(frame.pairs.sum())} linked pairs"
    )
    return GateResult(
        "clock_sync", bool(result.success), round(float(worst.median_abs_skew_seconds), 3),
        threshold, detail, frame_rows=len(frame),
    )


def _whole_hours(seconds: float) -> int | None:
    hours = round(seconds / 3600)
    if hours != 0 and abs(seconds - hours * 3600) <= WHOLE_HOUR_MARGIN_SECONDS:
        return int(hours)
    return None


def _asterisk_clock_frame(con) -> pd.DataFrame:
    """Per loaded Asterisk CDR file: median (start read as configured, UTC) - uniqueid epoch."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'raw' and table_name = 'asterisk_clock_checks'"
    ).fetchall()[0][0]
    if not exists:
        return pd.DataFrame()
    return _frame(con, """
        select source_system, site, telephony_clock, _file as file, legs_compared,
               median_offset_seconds
        from raw.asterisk_clock_checks
        where legs_compared > 0
        order by source_system, _load_seq
    """)


def _asterisk_clock_check(con, validator: _Validator) -> tuple[bool, float | None, str, int]:
    """The Asterisk part of timezone_offset: (passed, offset hours or None, detail, rows)."""
    frame = _asterisk_clock_frame(con)
    if frame.empty:
        return True, None, "", 0
    frame = frame.assign(
        offset_hours=[_whole_hours(v) for v in frame["median_offset_seconds"]],
    )
    frame["is_whole_hour_offset"] = frame["offset_hours"].notna()
    result = validator.validate(
        "timezone_offset_asterisk",
        frame[["source_system", "file", "median_offset_seconds", "is_whole_hour_offset"]],
        [validator.gx.expectations.ExpectColumnValuesToBeInSet(
            column="is_whole_hour_offset", value_set=[False])],
    )
    if result.success:
        return True, 0.0, f"{len(frame)} Asterisk files agree with their uniqueid epochs", len(frame)
    flagged = frame[frame["is_whole_hour_offset"]]
    first = flagged.iloc[0]
    hours = int(first.offset_hours)
    detail = (
        f"Asterisk source {first.source_system} (site {first.site}, telephony_clock "
        f"{first.telephony_clock}): start times read as configured are {hours:+d} h off the "
        f"uniqueid epochs in {len(flagged)} file(s) (first {first.file}): check the site's "
        "time_zone and telephony_clock (local vs utc) in the sites seed; the offset is not applied"
    )
    return False, float(hours), detail, len(frame)


def gate_timezone_offset(con, config: Config, validator: _Validator, **_) -> GateResult:
    frame = _skew_frame(con)
    threshold = f"no median skew within {WHOLE_HOUR_MARGIN_SECONDS} s of a whole non-zero number of hours"
    ast_passed, ast_hours, ast_detail, ast_rows = _asterisk_clock_check(con, validator)
    if frame.empty:
        if ast_hours is None:
            return GateResult("timezone_offset", True, None, threshold, "no data")
        return GateResult("timezone_offset", ast_passed, ast_hours, threshold, ast_detail,
                          frame_rows=ast_rows)
    frame = frame.assign(
        offset_hours=[_whole_hours(v) for v in frame["median_skew_seconds"]],
    )
    frame["is_whole_hour_offset"] = frame["offset_hours"].notna()
    result = validator.validate(
        "timezone_offset",
        frame[["source_system", "pbx_date", "median_skew_seconds", "is_whole_hour_offset"]],
        [validator.gx.expectations.ExpectColumnValuesToBeInSet(
            column="is_whole_hour_offset", value_set=[False])],
    )
    flagged = frame[frame["is_whole_hour_offset"]]
    rows = len(frame) + ast_rows
    if result.success:
        if not ast_passed:
            return GateResult("timezone_offset", False, ast_hours, threshold, ast_detail,
                              frame_rows=rows)
        detail = f"{len(frame)} source-days, no whole-hour offset"
        if ast_detail:
            detail += f"; {ast_detail}"
        return GateResult("timezone_offset", True, 0.0, threshold, detail, frame_rows=rows)
    hours = flagged["offset_hours"].mode().iloc[0]
    detail = (
        f"CRM times are {hours:+d} h off the PBX on {len(flagged)} source-days "
        f"(first {flagged.iloc[0].source_system} {flagged.iloc[0].pbx_date}): check crm_timezone "
        "and the sites' time_zone/telephony_clock settings"
    )
    if not ast_passed:
        detail += f"; {ast_detail}"
    return GateResult("timezone_offset", False, float(hours), threshold, detail,
                      frame_rows=rows)


def gate_future_timestamps(con, config: Config, validator: _Validator, run_started_at: datetime,
                           **_) -> GateResult:
    frame = _frame(
        con,
        "select count(*) as legs, count(*) filter (where started_at_utc > ?) as future_legs, "
        "max(started_at_utc) as latest_start from staging.stg_telephony__legs",
        [run_started_at],
    )
    # the run's start time goes in the detail: the threshold text stays the same run to run
    threshold = "0 legs starting after the run start"
    if int(frame.loc[0, "legs"]) == 0:
        return GateResult("future_timestamps", True, None, threshold, "no data")
    result = validator.validate(
        "future_timestamps", frame[["future_legs"]],
        [validator.gx.expectations.ExpectColumnValuesToBeBetween(column="future_legs", max_value=0)],
    )
    future = int(frame.loc[0, "future_legs"])
    detail = (
        f"{future} legs start in the future (latest {frame.loc[0, 'latest_start']}): check the PBX "
        "clock and the site's telephony_clock (local vs utc)"
        if future
        else f"no leg starts after the run start ({run_started_at:%Y-%m-%d %H:%M:%S} UTC)"
    )
    return GateResult("future_timestamps", bool(result.success), float(future), threshold, detail,
                      frame_rows=1)


def _share_gate(name: str, frame: pd.DataFrame, minimum: float, validator: _Validator,
                examples: list[str], what: str, fix: str) -> GateResult:
    threshold = f">= {minimum:g}"
    total = int(frame["total"].sum()) if not frame.empty else 0
    if total == 0:
        return GateResult(name, True, None, threshold, "no data")
    result = validator.validate(
        name, frame,
        [validator.gx.expectations.ExpectColumnValuesToBeBetween(
            column="valid_share", min_value=minimum, max_value=1)],
    )
    valid = int(frame["valid"].sum())
    share = valid / total
    worst = frame.sort_values("valid_share").iloc[0]
    detail = (
        f"{total - valid} of {total} {what} invalid (worst {worst.iloc[0]}: {worst.valid_share:.4f}); "
        f"{fix}"
    )
    return GateResult(name, bool(result.success), round(share, 6), threshold,
                      detail if not result.success else f"{valid} of {total} {what} valid",
                      examples=examples, frame_rows=len(frame))


def gate_number_normalization(con, config: Config, validator: _Validator, **_) -> GateResult:
    minimum = float(config.vars["normalization_min_valid_rate"])
    base = """
        from intermediate.int_calls_classified
        where is_inbound and not caller_is_unknown
    """
    frame = _frame(
        con,
        f"select source_system, count(*) as total, count(*) filter (where caller_number_is_valid) as valid, "
        f"count(*) filter (where caller_number_is_valid) / count(*) as valid_share {base} group by all order by 1",
    )
    examples = [mask_number(r[0]) for r in con.execute(
        f"select distinct caller_number_raw {base} and not caller_number_is_valid order by 1 limit 10"
    ).fetchall()]
    return _share_gate("number_normalization", frame, minimum, validator, examples,
                       "inbound callers' numbers",
                       "check the sites' default_region and the PBX's number format")


def gate_crm_number_normalization(con, config: Config, validator: _Validator, **_) -> GateResult:
    minimum = float(config.vars["crm_normalization_min_valid_rate"])
    sql = """
        with contacts as (
            select *, row_number() over (partition by contact_id order by load_seq desc, source_line desc) as copy_rank
            from staging.stg_crm__contacts
        ),
        phoned as (
            select contact_id, phone_raw, mobile_phone_raw,
                   (phone_is_unknown or phone_is_valid) and (mobile_phone_is_unknown or mobile_phone_is_valid) as all_valid
            from contacts
            where copy_rank = 1 and not (phone_is_unknown and mobile_phone_is_unknown)
        )
    """
    frame = _frame(
        con,
        sql + "select 'crm_contacts' as entity, count(*) as total, count(*) filter (where all_valid) as valid, "
        "count(*) filter (where all_valid) / count(*) as valid_share from phoned having count(*) > 0",
    )
    examples = [mask_number(r[0]) for r in con.execute(
        sql + "select distinct case when phone_raw <> '' then phone_raw else mobile_phone_raw end "
        "from phoned where not all_valid order by 1 limit 10"
    ).fetchall()]
    return _share_gate("crm_number_normalization", frame, minimum, validator, examples,
                       "CRM contacts with a phone",
                       "check crm_default_region and the CRM's phone fields")


def pending_incremental_watermark(con: duckdb.DuckDBPyConnection) -> int | None:
    """The watermark (`raw.build_state`) when the models were last built incrementally on
    DuckDB and that build awaits its marts (orchestration/incremental.py); None otherwise (a
    full refresh, a Spark build, a warehouse without the state table). The per-record models
    of an incremental build replace only the keys with a copy loaded after it, so a duplicate
    can only involve one of those keys."""
    try:
        row = con.execute(
            "select pending.mode, built.through_load_seq from raw.build_state as pending "
            "join raw.build_state as built on built.name = 'built' "
            "where pending.name = 'models_pending'"
        ).fetchone()
    except duckdb.CatalogException:
        return None
    if row is None or row[0] != "incremental" or row[1] is None:
        return None
    return int(row[1])


def gate_deduplication(con, config: Config, validator: _Validator, **_) -> GateResult:
    # after an incremental build only the keys with a copy loaded since the watermark: the
    # other rows of int_legs_deduplicated are those an earlier gate passed (docs/benchmarks.md)
    watermark = pending_incremental_watermark(con)
    scope = (
        "where (source_system, call_id) in (select source_system, call_id "
        "from staging.stg_telephony__legs where load_seq > ?)"
        if watermark is not None
        else ""
    )
    frame = _frame(con, f"""
        with legs as (
            select source_system, call_id, count(*) as copies
            from intermediate.int_legs_deduplicated {scope} group by all
        ),
        contacts as (
            select contact_id, phone_e164, mobile_phone_e164
            from staging.stg_crm__contacts
        ),
        numbers as (
            select phone_e164 as e164, contact_id from contacts where phone_e164 is not null
            union all
            select mobile_phone_e164, contact_id from contacts where mobile_phone_e164 is not null
        ),
        identities as (
            select numbers.e164, count(distinct ids.identity_id) as identities
            from numbers join staging.stg_crm__contact_identities as ids using (contact_id)
            group by all
        )
        select
            (select count(*) from intermediate.int_legs_deduplicated) as legs,
            (select coalesce(sum(copies), 0) from legs) as legs_checked,
            (select count(*) from legs where copies > 1) as duplicate_legs,
            (select count(*) from identities where identities > 1) as numbers_with_several_identities
    """, [watermark] if watermark is not None else None)
    threshold = "0 duplicate legs on (source_system, call_id), 0 numbers with several identities"
    if int(frame.loc[0, "legs"]) == 0:
        return GateResult("deduplication", True, None, threshold, "no data")
    gx = validator.gx
    result = validator.validate("deduplication", frame, [
        gx.expectations.ExpectColumnValuesToBeBetween(column="duplicate_legs", max_value=0),
        gx.expectations.ExpectColumnValuesToBeBetween(column="numbers_with_several_identities", max_value=0),
    ])
    duplicates = int(frame.loc[0, "duplicate_legs"]) + int(frame.loc[0, "numbers_with_several_identities"])
    scope = (
        f"{int(frame.loc[0, 'legs_checked'])} of {int(frame.loc[0, 'legs'])} legs: "
        "those with a copy loaded since the last complete build"
        if watermark is not None else ""
    )
    detail = (
        f"{int(frame.loc[0, 'duplicate_legs'])} duplicate legs, "
        f"{int(frame.loc[0, 'numbers_with_several_identities'])} numbers with several identities: "
        "check int_legs_deduplicated and the identity merge"
        if not result.success else "legs and identities unique"
    )
    return GateResult("deduplication", bool(result.success), float(duplicates), threshold, detail,
                      frame_rows=1, scope=scope)


def gate_tracking_numbers(con, config: Config, validator: _Validator, **_) -> GateResult:
    frame = _frame(con, """
        with windows as (
            select tracking_number, campaign, valid_from_utc,
                   coalesce(valid_to_utc, cast('9999-12-31' as timestamp)) as valid_to_utc
            from intermediate.int_tracking_numbers
        ),
        overlapping as (
            select a.tracking_number
            from windows as a
            join windows as b
              on a.tracking_number = b.tracking_number
             and a.valid_from_utc < b.valid_to_utc
             and b.valid_from_utc < a.valid_to_utc
             and (a.valid_from_utc < b.valid_from_utc
                  or (a.valid_from_utc = b.valid_from_utc and a.campaign < b.campaign))
        ),
        numbers as (select distinct tracking_number from windows),
        calls as (
            select calls.call_key, calls.campaign
            from intermediate.int_calls_classified as calls
            join numbers on calls.business_number_e164 = numbers.tracking_number
            where calls.is_inbound
        )
        select
            (select count(*) from windows) as windows,
            (select count(*) from overlapping) as overlapping_windows,
            (select count(*) from calls) as tracked_calls,
            (select count(*) from calls where campaign is null) as calls_in_gap
    """)
    threshold = "0 overlapping windows, 0 inbound calls to a tracking number outside every window"
    if int(frame.loc[0, "windows"]) == 0:
        return GateResult("tracking_numbers", True, None, threshold, "no data")
    gx = validator.gx
    result = validator.validate("tracking_numbers", frame, [
        gx.expectations.ExpectColumnValuesToBeBetween(column="overlapping_windows", max_value=0),
        gx.expectations.ExpectColumnValuesToBeBetween(column="calls_in_gap", max_value=0),
    ])
    overlapping = int(frame.loc[0, "overlapping_windows"])
    gaps = int(frame.loc[0, "calls_in_gap"])
    examples = [r[0] for r in con.execute("""
        select distinct a.tracking_number from intermediate.int_tracking_numbers a
        join intermediate.int_tracking_numbers b on a.tracking_number = b.tracking_number
         and a.valid_from_utc < coalesce(b.valid_to_utc, cast('9999-12-31' as timestamp))
         and b.valid_from_utc < coalesce(a.valid_to_utc, cast('9999-12-31' as timestamp))
         and (a.valid_from_utc <> b.valid_from_utc or a.campaign <> b.campaign)
        order by 1 limit 10""").fetchall()]
    detail = (
        f"{overlapping} overlapping campaign windows, {gaps} calls in a gap: fix valid_from/valid_to "
        "in marketing/tracking_numbers*.csv"
        if not result.success
        else f"{int(frame.loc[0, 'tracked_calls'])} tracked calls, each in exactly one window"
    )
    return GateResult("tracking_numbers", bool(result.success), float(overlapping + gaps),
                      threshold, detail, examples=examples, frame_rows=1)


GATE_FUNCTIONS: dict[str, Callable[..., GateResult]] = {
    "clock_sync": gate_clock_sync,
    "timezone_offset": gate_timezone_offset,
    "future_timestamps": gate_future_timestamps,
    "number_normalization": gate_number_normalization,
    "crm_number_normalization": gate_crm_number_normalization,
    "deduplication": gate_deduplication,
    "tracking_numbers": gate_tracking_numbers,
}


def run_gates(con: duckdb.DuckDBPyConnection, config: Config, run_started_at: datetime) -> list[GateResult]:
    """Every gate, in the spec's order. A gate that errors fails with the error as detail."""
    validator = _Validator()
    results: list[GateResult] = []
    for name in GATES:
        try:
            results.append(GATE_FUNCTIONS[name](con, config, validator, run_started_at=run_started_at))
        except Exception as error:  # a broken gate must never pass silently
            log.exception("gate %s errored", name)
            results.append(GateResult(name, False, None, "gate must run", f"gate errored: {error}"))
    for result in results:
        if result.measured_value is not None and isinstance(result.measured_value, float) and math.isnan(result.measured_value):
            result.measured_value = None
    return results


RESULTS_DDL = """
create schema if not exists marts;
create table if not exists marts.data_quality_results (
    run_id varchar not null,
    checked_at timestamp not null,
    gate varchar not null,
    passed boolean not null,
    measured_value double,
    threshold varchar,
    detail varchar
);
"""


def record_results(con: duckdb.DuckDBPyConnection, run_id: str, checked_at: datetime,
                   results: list[GateResult]) -> None:
    """Append this run's gate results to marts.data_quality_results (pass or fail)."""
    con.execute(RESULTS_DDL)
    con.execute("delete from marts.data_quality_results where run_id = ?", [run_id])
    con.executemany(
        "insert into marts.data_quality_results values (?, ?, ?, ?, ?, ?, ?)",
        [
            [run_id, checked_at, r.gate, r.passed, r.measured_value, r.threshold, r.detail]
            for r in results
        ],
    )

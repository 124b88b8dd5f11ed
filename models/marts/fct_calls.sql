-- One row per logical call (all directions), BI-facing: no caller number, a keyed hash instead.
-- A view in the warehouse: the columns of int_calls_classified (incremental on DuckDB) without
-- the caller's number, so the warehouse does not compress the calls a third time; the
-- published file holds it as a table (orchestration/publish.py). docs/benchmarks.md.
{{ config(materialized='view') }}
with calls as (

    select * from {{ ref('int_calls_classified') }}

),

final as (

    select
        call_key,
        source_system,
        call_id,
        direction,
        site,
        queue,
        status,
        started_at_utc,
        answered_at_utc,
        ended_at_utc,
        is_answered,
        is_inbound,
        is_missed,
        cast(wait_seconds as double) as wait_seconds,
        cast(talk_seconds as double) as talk_seconds,
        caller_key,
        tracking_number,
        campaign,
        source,
        channel,
        week_start
    from calls

)

select * from final

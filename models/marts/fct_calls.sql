-- One row per logical call (all directions), BI-facing: no caller number, a keyed hash instead.
-- Incremental on DuckDB like int_calls_classified (macros/incremental.sql).
-- depends_on: {{ ref('int_calls_touched') }}
{{ ringledger.per_call_config('root') }}
with calls as (

    select * from {{ ref('int_calls_classified') }}
    where {{ ringledger.in_changed('call_id', 'root') }}

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

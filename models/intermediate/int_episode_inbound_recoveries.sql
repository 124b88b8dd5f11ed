-- The first inbound recovery of each episode with a caller number (metrics.md section 4): the
-- first inbound call of the caller, to any site, answered by a person, after the episode's
-- first miss ("after" excludes the instant of the miss) and within callback_horizon_days of it
-- (the limit included). One row per episode that has one.
-- On one time line per caller number (episode starts and answered calls, by instant) the first
-- answered call after an episode is the earliest answered call among the rows after it: at one
-- instant the answered calls sort before the episodes, so the rows after an episode are later
-- calls or episodes at its own instant. A window where a join of every episode with every
-- answered call of its caller, then a minimum, cost 1.6 s of each day's build at a year
-- (docs/benchmarks.md, ninth session).
-- Incremental on DuckDB like int_missed_call_episodes_collapsed (macros/incremental.sql,
-- per-caller models): both inputs of a caller number change only when the number is in
-- int_callers_touched, so a build after new loads recomputes those numbers' rows only.
-- depends_on: {{ ref('int_callers_touched') }}
{{ ringledger.per_caller_config('caller_number_e164') }}
with episodes as (

    select episode_id, caller_number_e164, first_missed_at_utc
    from {{ ref('int_missed_call_episodes_collapsed') }}
    where caller_number_e164 is not null
        and {{ ringledger.in_touched_callers('caller_number_e164') }}

),

answered_inbound as (

    {{ ringledger.touched_answered_inbound_calls() }}

),

time_line as (

    select
        caller_number_e164,
        first_missed_at_utc as event_at_utc,
        episode_id,
        0 as is_answered_call
    from episodes

    union all

    select
        caller_number_e164,
        started_at_utc as event_at_utc,
        cast(null as {{ dbt.type_string() }}) as episode_id,
        1 as is_answered_call
    from answered_inbound

),

next_answered as (

    select
        caller_number_e164,
        episode_id,
        is_answered_call,
        event_at_utc as first_missed_at_utc,
        min(case when is_answered_call = 1 then event_at_utc end) over (
            partition by caller_number_e164
            order by event_at_utc asc nulls last, is_answered_call desc nulls last
            rows between 1 following and unbounded following
        ) as next_answered_at_utc
    from time_line

),

final as (

    select
        episode_id,
        caller_number_e164,
        next_answered_at_utc as first_inbound_recovery_at_utc
    from next_answered
    where is_answered_call = 0
        and next_answered_at_utc <= {{ ringledger.horizon_ends_at('first_missed_at_utc') }}

)

select * from final

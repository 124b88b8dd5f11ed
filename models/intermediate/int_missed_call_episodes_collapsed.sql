-- Episodes (metrics.md section 2): each noise miss is an episode of its own; non-noise misses
-- of one caller number to one site collapse into one episode while each starts within
-- repeat_dial_window_minutes of the previous one (start to start, the limit included). An
-- inbound call of that caller answered by a person, at any site, between two misses closes the
-- episode. The episode's attributes are those of its first miss.
-- Incremental on DuckDB (macros/incremental.sql, per-caller models): a build after new loads
-- recomputes the whole time line of each number in int_callers_touched and the number-less
-- misses of the recomputed calls, and keeps the other episodes.
-- depends_on: {{ ref('int_callers_touched') }}
-- depends_on: {{ ref('int_calls_touched') }}
{{ ringledger.per_caller_config('caller_number_e164', 'first_call_key') }}
with misses as (

    select * from {{ ref('int_missed_calls_flagged') }}
    where {{ ringledger.in_touched_callers('caller_number_e164', call_id_column='call_id') }}

),

answered_inbound as (

    {{ ringledger.touched_answered_inbound_calls() }}

),

-- one time line per caller number: its non-noise misses and its answered inbound calls
events as (

    select
        caller_number_e164,
        site,
        started_at_utc,
        call_key,
        1 as is_miss,
        0 as is_answered_call
    from misses
    where not is_noise

    union all

    select
        caller_number_e164,
        cast(null as {{ dbt.type_string() }}) as site,
        started_at_utc,
        cast(null as {{ dbt.type_string() }}) as call_key,
        0 as is_miss,
        1 as is_answered_call
    from answered_inbound

),

answered_counts as (

    select
        *,
        -- answered calls of the caller at or before this instant
        sum(is_answered_call) over (
            partition by caller_number_e164
            order by started_at_utc asc nulls last
            range between unbounded preceding and current row
        ) as answered_up_to,
        -- answered calls of the caller strictly before this instant, on a miss's row: among
        -- events at the same instant the misses sort first, so the rows before a miss are the
        -- events at earlier instants and other misses (one sort shared with the window above,
        -- where a partition by caller and instant would hash and sort again)
        sum(is_answered_call) over (
            partition by caller_number_e164
            order by started_at_utc asc nulls last, is_answered_call asc nulls last
            rows between unbounded preceding and current row
        ) as answered_before
    from events

),

sequenced as (

    select
        caller_number_e164,
        site,
        started_at_utc,
        call_key,
        answered_before,
        lag(started_at_utc) over (
            partition by caller_number_e164, site
            order by started_at_utc asc nulls last, call_key asc nulls last
        ) as previous_missed_at_utc,
        lag(answered_up_to) over (
            partition by caller_number_e164, site
            order by started_at_utc asc nulls last, call_key asc nulls last
        ) as answered_up_to_previous
    from answered_counts
    where is_miss = 1

),

boundaries as (

    select
        *,
        case
            when previous_missed_at_utc is null then 1
            when {{ seconds_between('previous_missed_at_utc', 'started_at_utc') }}
                > {{ var('repeat_dial_window_minutes') }} * 60 then 1
            when answered_before > answered_up_to_previous then 1
            else 0
        end as starts_episode
    from sequenced

),

numbered as (

    select
        *,
        sum(starts_episode) over (
            partition by caller_number_e164, site
            order by started_at_utc asc nulls last, call_key asc nulls last
            rows between unbounded preceding and current row
        ) as episode_number
    from boundaries

),

collapsed as (

    select
        caller_number_e164,
        site,
        episode_number,
        min(started_at_utc) as first_missed_at_utc,
        max(started_at_utc) as last_missed_at_utc,
        count(*) as missed_attempts
    from numbered
    group by caller_number_e164, site, episode_number

),

first_misses as (

    select
        numbered.call_key,
        collapsed.last_missed_at_utc,
        collapsed.missed_attempts
    from numbered
    inner join collapsed
        on numbered.caller_number_e164 = collapsed.caller_number_e164
        and (numbered.site = collapsed.site or (numbered.site is null and collapsed.site is null))
        and numbered.episode_number = collapsed.episode_number
    where numbered.starts_episode = 1

),

episode_heads as (

    select call_key, last_missed_at_utc, missed_attempts from first_misses

    union all

    select call_key, started_at_utc as last_missed_at_utc, 1 as missed_attempts
    from misses
    where is_noise

),

final as (

    select
        {{ surrogate_key(["'episode'", 'misses.call_key']) }} as episode_id,
        misses.call_key as first_call_key,
        misses.source_system,
        misses.caller_number_e164,
        misses.caller_key,
        misses.site,
        misses.site_time_zone,
        misses.queue,
        misses.ivr_selection,
        misses.tracking_number,
        misses.campaign,
        misses.source,
        misses.channel,
        misses.campaign_default_intent,
        misses.is_noise,
        misses.noise_reason,
        misses.is_blocklisted,
        misses.is_wrong_number,
        misses.started_at_utc as first_missed_at_utc,
        episode_heads.last_missed_at_utc,
        episode_heads.missed_attempts,
        misses.week_start
    from episode_heads
    inner join misses
        on episode_heads.call_key = misses.call_key

)

select * from final

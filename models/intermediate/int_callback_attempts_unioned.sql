-- Outbound calls that can serve as callback attempts (metrics.md section 4), up to the as-of
-- time: PBX outbound calls, and CRM activities of type outbound_call that reference no PBX call
-- (an activity whose pbx_call_id matches a PBX call is that call, counted once). A CRM-only
-- activity's time is corrected by the signed median CRM clock skew of its UTC date, else over
-- all pairs. Connected: a PBX call answered with talk >= min_connected_talk_seconds; a CRM-only
-- activity with disposition connected/answered/completed and duration >= the same threshold.
-- Incremental on DuckDB (macros/incremental.sql, per-call models): a build after new loads
-- recomputes the PBX attempts of the touched calls (their rows read once: touched_rows) and
-- every CRM-only attempt (a new clock-skew pair moves the median of its date, and the median
-- over all pairs that dates without pairs take), and keeps the other PBX attempts. PBX calls
-- never start after the as-of time (the latest leg loaded), so a later as-of changes none.
-- depends_on: {{ ref('int_calls_touched') }}
{{ ringledger.per_call_config('root', ringledger.attempts_recomputed_every_build()) }}
with {{ ringledger.touched_rows_cte('touched_calls', ref('int_calls_classified'), ringledger.in_changed('call_id', 'root')) }}

pbx_outbound as (

    select
        call_key as attempt_id,
        'pbx' as attempt_source,
        call_id,
        caller_number_e164,
        started_at_utc as attempted_at_utc,
        cast(talk_seconds as double) as talk_seconds,
        (
            coalesce(is_answered, false)
            and coalesce(talk_seconds, 0) >= {{ var('min_connected_talk_seconds') }}
        ) as is_connected
    from {{ ringledger.touched_rows('touched_calls', ref('int_calls_classified')) }}
    where direction = 'outbound'
        and caller_number_e164 is not null

),

activities as (

    select * from {{ ref('int_crm_activities_deduplicated') }}
    where activity_type = 'outbound_call'
        and phone_e164 is not null
        and logged_at_utc is not null

),

linked as (

    select distinct activity_id from {{ ref('int_crm_activity_calls_linked') }}

),

skews as (

    select skew_scope, skew_date, median_skew_seconds from {{ ref('int_crm_clock_skews_measured') }}

),

crm_only as (

    select
        activities.activity_id as attempt_id,
        'crm' as attempt_source,
        cast(null as {{ dbt.type_string() }}) as call_id,
        activities.phone_e164 as caller_number_e164,
        {{ add_seconds(
            'activities.logged_at_utc',
            '-1.0 * coalesce(date_skews.median_skew_seconds, all_skews.median_skew_seconds, 0.0)'
        ) }} as attempted_at_utc,
        cast(activities.duration_seconds as double) as talk_seconds,
        (
            activities.disposition in ('connected', 'answered', 'completed')
            and coalesce(activities.duration_seconds, 0) >= {{ var('min_connected_talk_seconds') }}
        ) as is_connected
    from activities
    left join linked
        on activities.activity_id = linked.activity_id
    left join skews as date_skews
        on date_skews.skew_scope = 'date'
        and cast(activities.logged_at_utc as date) = date_skews.skew_date
    left join skews as all_skews
        on all_skews.skew_scope = 'all'
    where linked.activity_id is null

),

unioned as (

    select * from pbx_outbound
    union all
    select * from crm_only

),

final as (

    select * from unioned
    where attempted_at_utc <= {{ as_of_utc() }}

)

select * from final

-- One row per missed-call episode up to the as-of time (noise included, flagged): intent,
-- recovery, delays on the wall and business clocks, SLA, delay bucket and conversion
-- (metrics.md sections 2-6). BI-facing: caller_key only, never the caller's number.
-- The episodes are computed per caller number and stored in int_missed_call_episodes_enriched
-- (macros/incremental.sql, "The rest of the episode chain per caller number"); the columns that
-- depend on the as-of time are computed here, on every row, for this build's as-of time (the
-- SLA status and minutes to it, by the same macros as int_missed_call_episodes_timed).
with episodes as (

    select * from {{ ref('int_missed_call_episodes_enriched') }}

),

as_of as (

    select {{ as_of_utc() }} as as_of_utc

),

segments as (

    select * from {{ ref('stg_calendar__site_segments') }}

),

site_as_of as (

    {{ site_cumulative_at_as_of('segments', 'as_of') }}

),

final as (

    select
        as_of.as_of_utc,
        episodes.episode_id,
        episodes.first_call_key,
        episodes.caller_key,
        episodes.site,
        episodes.queue,
        episodes.ivr_selection,
        episodes.owner,
        episodes.tracking_number,
        episodes.campaign,
        episodes.source,
        episodes.channel,
        episodes.intent,
        cast(episodes.intent_rule as integer) as intent_rule,
        episodes.is_noise,
        episodes.noise_reason,
        episodes.first_missed_at_utc,
        episodes.last_missed_at_utc,
        cast(episodes.missed_attempts as integer) as missed_attempts,
        episodes.is_business_hours,
        case when episodes.is_business_hours then 'business' else 'after_hours' end as hours_segment,
        episodes.first_attempt_at_utc,
        episodes.first_connected_callback_at_utc,
        episodes.first_inbound_recovery_at_utc,
        episodes.first_contact_at_utc,
        episodes.recovered_by,
        cast(episodes.callback_attempts as integer) as callback_attempts,
        episodes.has_connected_callback,
        cast(episodes.attempt_delay_minutes as double) as attempt_delay_minutes,
        cast(episodes.attempt_delay_business_minutes as double) as attempt_delay_business_minutes,
        cast(episodes.contact_delay_minutes as double) as contact_delay_minutes,
        cast(episodes.contact_delay_business_minutes as double) as contact_delay_business_minutes,
        episodes.delay_bucket,
        cast(episodes.delay_bucket_sort_order as integer) as delay_bucket_sort_order,
        cast(episodes.sla_business_minutes as double) as sla_business_minutes,
        episodes.sla_due_at_utc,
        cast({{ minutes_to_sla('episodes.sla_target_cumulative_seconds', 'site_as_of.cumulative_at_as_of') }} as double) as minutes_to_sla,
        {{ sla_status(
            'episodes.sla_business_minutes',
            'episodes.sla_due_at_utc',
            'episodes.first_attempt_at_utc',
            'episodes.first_inbound_recovery_at_utc',
            'as_of.as_of_utc'
        ) }} as sla_status,
        episodes.horizon_ends_at_utc,
        episodes.is_contacted_within_sla,
        episodes.converted,
        episodes.converting_opportunities,
        (
            not episodes.is_noise
            and episodes.first_missed_at_utc >= {{ add_seconds('as_of.as_of_utc', '-86400.0 * ' ~ var('revenue_lookback_days')) }}
            and episodes.first_missed_at_utc <= as_of.as_of_utc
        ) as is_in_revenue_lookback,
        episodes.week_start
    from episodes
    cross join as_of
    left join site_as_of
        on episodes.site = site_as_of.site

)

select * from final

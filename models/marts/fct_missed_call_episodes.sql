-- One row per missed-call episode up to the as-of time (noise included, flagged): intent,
-- recovery, delays on the wall and business clocks, SLA, delay bucket and conversion
-- (metrics.md sections 2-6). BI-facing: caller_key only, never the caller's number.
-- The episodes are computed per caller number and stored in int_missed_call_episodes_enriched
-- (macros/incremental.sql, "The rest of the episode chain per caller number"); the columns that
-- depend on the as-of time are computed here for this build's as-of time (the SLA status and
-- minutes to it by the same macros as int_missed_call_episodes_timed). Incremental on DuckDB
-- (macros/incremental.sql): a build after new loads writes the episodes recomputed since the
-- watermark, deletes those no longer stored, and updates the as-of columns of every other row.
{{ ringledger.replaced_rows_config(
    "{{ ringledger.delete_recomputed_episodes() }}",
    "{{ ringledger.refresh_episode_as_of_columns() }}"
) }}
{%- set as_of_values = ringledger.episode_as_of_values() %}
with episodes as (

    select * from {{ ref('int_missed_call_episodes_enriched') }}
    where {{ ringledger.in_episodes_recomputed() }}

),

{{ ringledger.episode_as_of_ctes() }},

final as (

    select
        {{ as_of_values.as_of_utc }} as as_of_utc,
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
        {{ as_of_values.minutes_to_sla }} as minutes_to_sla,
        {{ as_of_values.sla_status }} as sla_status,
        episodes.horizon_ends_at_utc,
        episodes.is_contacted_within_sla,
        episodes.converted,
        episodes.converting_opportunities,
        {{ as_of_values.is_in_revenue_lookback }} as is_in_revenue_lookback,
        episodes.week_start
    from episodes
    cross join as_of
    left join site_as_of
        on episodes.site = site_as_of.site

)

select * from final

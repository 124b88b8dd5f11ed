-- One row per missed-call episode up to the as-of time (noise included, flagged): intent,
-- recovery, delays on the wall and business clocks, SLA, delay bucket and conversion
-- (metrics.md sections 2-6). BI-facing: caller_key only, never the caller's number.
-- A view: the episodes' columns are stored in fct_missed_call_episodes_stored (a row changes
-- only when its episode does); the columns that depend on the as-of time are computed on read
-- for this build's as-of time (dim_as_of_clocks: the instant and each site's business clock
-- then), by the same macros as int_missed_call_episodes_timed. Its relations are named without
-- the warehouse's catalog, so that the published file holds the same view over its own copies
-- of the two tables (orchestration/publish.py).
{{ config(materialized='view') }}
{%- set as_of_values = ringledger.episode_as_of_values() %}
with episodes as (

    select * from {{ ref('fct_missed_call_episodes_stored').include(database=False) }}

),

clocks as (

    select * from {{ ref('dim_as_of_clocks').include(database=False) }}

),

as_of as (

    select as_of_utc from clocks where site is null

),

site_as_of as (

    select site, cumulative_open_seconds as cumulative_at_as_of from clocks where site is not null

),

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
        episodes.intent_rule,
        episodes.is_noise,
        episodes.noise_reason,
        episodes.first_missed_at_utc,
        episodes.last_missed_at_utc,
        episodes.missed_attempts,
        episodes.is_business_hours,
        episodes.hours_segment,
        episodes.first_attempt_at_utc,
        episodes.first_connected_callback_at_utc,
        episodes.first_inbound_recovery_at_utc,
        episodes.first_contact_at_utc,
        episodes.recovered_by,
        episodes.callback_attempts,
        episodes.has_connected_callback,
        episodes.attempt_delay_minutes,
        episodes.attempt_delay_business_minutes,
        episodes.contact_delay_minutes,
        episodes.contact_delay_business_minutes,
        episodes.delay_bucket,
        episodes.delay_bucket_sort_order,
        episodes.sla_business_minutes,
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

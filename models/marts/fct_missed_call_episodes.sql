-- One row per missed-call episode up to the as-of time (noise included, flagged): intent,
-- recovery, delays on the wall and business clocks, SLA, delay bucket and conversion
-- (metrics.md sections 2-6). BI-facing: caller_key only, never the caller's number.
with episodes as (

    select * from {{ ref('int_missed_call_episodes_timed') }}

),

conversions as (

    select episode_id, count(distinct opportunity_id) as conversions
    from {{ ref('int_episode_conversions_matched') }}
    group by episode_id

),

opportunities_loaded as (

    select count(*) as opportunities from {{ ref('int_crm_opportunities_deduplicated') }}

),

queue_owners as (

    select lower(trim(queue)) as queue, min(nullif(trim(owner), '')) as owner
    from {{ ref('queue_owners') }}
    group by lower(trim(queue))

),

caller_identities as (

    select caller_number_e164, identity_id from {{ ref('int_caller_identities_resolved') }}

),

survivor_owners as (

    select contact_id as identity_id, owner from {{ ref('int_crm_contacts_identified') }}
    where is_survivor

),

final as (

    select
        {{ as_of_utc() }} as as_of_utc,
        episodes.episode_id,
        episodes.first_call_key,
        episodes.caller_key,
        episodes.site,
        episodes.queue,
        episodes.ivr_selection,
        coalesce(queue_owners.owner, survivor_owners.owner, 'unassigned') as owner,
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
        cast(episodes.minutes_to_sla as double) as minutes_to_sla,
        episodes.sla_status,
        episodes.horizon_ends_at_utc,
        episodes.is_contacted_within_sla,
        case
            when opportunities_loaded.opportunities = 0 then cast(null as boolean)
            else coalesce(conversions.conversions, 0) > 0
        end as converted,
        case
            when opportunities_loaded.opportunities = 0 then cast(null as integer)
            else cast(coalesce(conversions.conversions, 0) as integer)
        end as converting_opportunities,
        (
            not episodes.is_noise
            and episodes.first_missed_at_utc >= {{ add_seconds(as_of_utc(), '-86400.0 * ' ~ var('revenue_lookback_days')) }}
            and episodes.first_missed_at_utc <= {{ as_of_utc() }}
        ) as is_in_revenue_lookback,
        episodes.week_start
    from episodes
    cross join opportunities_loaded
    left join conversions
        on episodes.episode_id = conversions.episode_id
    left join queue_owners
        on lower(trim(episodes.queue)) = queue_owners.queue
    left join caller_identities
        on episodes.caller_number_e164 = caller_identities.caller_number_e164
    left join survivor_owners
        on caller_identities.identity_id = survivor_owners.identity_id

)

select * from final

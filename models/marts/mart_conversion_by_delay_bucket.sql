-- Conversion of the lookback episodes by contact-delay bucket (metrics.md section 6), for each
-- intent and for intent `all`, with the Wilson score interval (z = wilson_z). Every bucket of
-- the delay_buckets seed appears for every intent; a row with no episodes has null rate and
-- bounds. Lookback: non-noise episodes whose first miss lies in
-- [as_of - revenue_lookback_days, as_of]. When no opportunity was loaded at all, conversion is
-- unknown: conversions, rate and bounds are null.
with episodes as (

    select intent, delay_bucket, converted
    from {{ ref('fct_missed_call_episodes') }}
    where is_in_revenue_lookback

),

buckets as (

    select delay_bucket, sort_order from {{ ref('delay_buckets') }}

),

intents as (

    select 'high_intent' as intent, 1 as intent_order
    union all select 'service' as intent, 2 as intent_order
    union all select 'informational' as intent, 3 as intent_order
    union all select 'wrong_or_spam' as intent, 4 as intent_order
    union all select 'all' as intent, 0 as intent_order

),

opportunities_loaded as (

    select count(*) > 0 as is_conversion_known from {{ ref('int_crm_opportunities_deduplicated') }}

),

counted as (

    select
        case when grouping(intent) = 1 then 'all' else intent end as intent,
        delay_bucket,
        count(*) as episodes,
        sum(case when converted then 1 else 0 end) as conversions
    from episodes
    group by grouping sets ((intent, delay_bucket), (delay_bucket))

),

grid as (

    select
        intents.intent,
        intents.intent_order,
        buckets.delay_bucket,
        buckets.sort_order,
        coalesce(counted.episodes, 0) as episodes,
        case when opportunities_loaded.is_conversion_known then coalesce(counted.conversions, 0) end as conversions
    from intents
    cross join buckets
    cross join opportunities_loaded
    left join counted
        on intents.intent = counted.intent
        and buckets.delay_bucket = counted.delay_bucket

),

final as (

    select
        {{ as_of_utc() }} as as_of_utc,
        intent,
        delay_bucket,
        cast(sort_order as integer) as delay_bucket_sort_order,
        cast(episodes as integer) as episodes,
        cast(conversions as integer) as conversions,
        cast(conversions as double) / nullif(episodes, 0) as conversion_rate,
        cast({{ wilson_low('conversions', 'episodes', var('wilson_z')) }} as double) as ci_low,
        cast({{ wilson_high('conversions', 'episodes', var('wilson_z')) }} as double) as ci_high,
        episodes < {{ var('min_segment_sample') }} as low_confidence,
        cast({{ var('revenue_interval') }} as double) as {{ adapter.quote('interval') }},
        cast({{ var('revenue_lookback_days') }} as integer) as lookback_days
    from grid

)

select * from final

-- One row per week (Monday-starting, in each call's site local time), metrics.md section 8.
-- Call counts from the calls themselves (noise included where stated); episode counts, rates
-- and percentiles are the week's all/all/all row of mart_callback_delay_percentiles (non-noise
-- episodes), the high-intent counts its high_intent/all/all row: the episodes are counted once,
-- there; revenue columns are the week's high-intent row of mart_revenue_at_risk.
with calls as (

    select week_start, is_inbound, is_answered, is_missed
    from {{ ref('fct_calls') }}
    where week_start is not null

),

missed as (

    select week_start, is_noise
    from {{ ref('int_missed_calls_flagged') }}
    where week_start is not null

),

percentiles as (

    select * from {{ ref('mart_callback_delay_percentiles') }}
    where intent = 'all' and hours_segment = 'all' and source = 'all'

),

high_intent_percentiles as (

    select week_start, episodes, sla_breaches
    from {{ ref('mart_callback_delay_percentiles') }}
    where intent = 'high_intent' and hours_segment = 'all' and source = 'all'

),

revenue as (

    select * from {{ ref('mart_revenue_at_risk') }}
    where intent = 'high_intent'

),

call_counts as (

    select
        week_start,
        sum(case when is_inbound then 1 else 0 end) as inbound_calls,
        sum(case when is_inbound and is_answered then 1 else 0 end) as answered_calls
    from calls
    group by week_start

),

miss_counts as (

    select
        week_start,
        count(*) as missed_calls,
        sum(case when is_noise then 1 else 0 end) as noise_misses
    from missed
    group by week_start

),

episode_counts as (

    select
        percentiles.week_start,
        percentiles.episodes,
        coalesce(high_intent_percentiles.episodes, 0) as high_intent_episodes,
        coalesce(high_intent_percentiles.sla_breaches, 0) as high_intent_breaches
    from percentiles
    left join high_intent_percentiles
        on percentiles.week_start = high_intent_percentiles.week_start

),

weeks as (

    select week_start from call_counts
    union
    select week_start from miss_counts
    union
    select week_start from episode_counts

),

joined as (

    select
        weeks.week_start,
        coalesce(call_counts.inbound_calls, 0) as inbound_calls,
        coalesce(call_counts.answered_calls, 0) as answered_calls,
        coalesce(miss_counts.missed_calls, 0) as missed_calls,
        coalesce(miss_counts.noise_misses, 0) as noise_misses,
        coalesce(episode_counts.episodes, 0) as episodes,
        coalesce(episode_counts.high_intent_episodes, 0) as high_intent_episodes,
        coalesce(episode_counts.high_intent_breaches, 0) as high_intent_breaches,
        percentiles.callback_attempt_rate,
        percentiles.contact_rate,
        percentiles.callback_completion_rate,
        percentiles.p50_attempt_minutes,
        percentiles.p90_attempt_minutes,
        percentiles.sla_breach_rate,
        revenue.revenue_at_risk_low,
        revenue.revenue_at_risk_mid,
        revenue.revenue_at_risk_high
    from weeks
    left join call_counts
        on weeks.week_start = call_counts.week_start
    left join miss_counts
        on weeks.week_start = miss_counts.week_start
    left join episode_counts
        on weeks.week_start = episode_counts.week_start
    left join percentiles
        on weeks.week_start = percentiles.week_start
    left join revenue
        on weeks.week_start = revenue.week_start

),

with_previous as (

    select
        joined.*,
        previous_week.high_intent_episodes as previous_high_intent_episodes
    from joined
    left join joined as previous_week
        on previous_week.week_start = cast({{ dbt.dateadd('day', -7, 'joined.week_start') }} as date)

),

final as (

    select
        {{ as_of_utc() }} as as_of_utc,
        week_start,
        cast(inbound_calls as integer) as inbound_calls,
        cast(answered_calls as integer) as answered_calls,
        cast(missed_calls as integer) as missed_calls,
        cast(missed_calls - noise_misses as double)
            / nullif(answered_calls + missed_calls - noise_misses, 0) as miss_rate,
        cast(noise_misses as integer) as noise_misses,
        cast(episodes as integer) as episodes,
        cast(high_intent_episodes as integer) as high_intent_episodes,
        cast(high_intent_episodes as double) / nullif(episodes, 0) as high_intent_share,
        cast(callback_attempt_rate as double) as callback_attempt_rate,
        cast(contact_rate as double) as contact_rate,
        cast(callback_completion_rate as double) as callback_completion_rate,
        cast(p50_attempt_minutes as double) as p50_attempt_minutes,
        cast(p90_attempt_minutes as double) as p90_attempt_minutes,
        cast(sla_breach_rate as double) as sla_breach_rate,
        cast(high_intent_breaches as integer) as high_intent_breaches,
        cast(revenue_at_risk_low as double) as revenue_at_risk_low,
        cast(revenue_at_risk_mid as double) as revenue_at_risk_mid,
        cast(revenue_at_risk_high as double) as revenue_at_risk_high,
        cast(
            (high_intent_episodes - previous_high_intent_episodes) * 1.0
            / nullif(previous_high_intent_episodes, 0) as double
        ) as high_intent_episodes_wow_change,
        coalesce(
            (high_intent_episodes - previous_high_intent_episodes) * 1.0
            / nullif(previous_high_intent_episodes, 0) >= {{ var('spike_threshold') }},
            false
        ) as is_spike
    from with_previous

)

select * from final

-- Revenue at risk per week and intent, and `all` (metrics.md section 6): for each SLA-breached
-- non-noise episode of the week (week of first_missed_at; the lookback rates apply whatever
-- the week), uplift x value per conversion, where
--   mid:  max(0, baseline_rate - bucket_rate)
--   low:  max(0, baseline_low  - bucket_high)
--   high: max(0, baseline_high - bucket_low)
-- with the conversion rates (and Wilson bounds) of the episode's own delay bucket and intent,
-- and the intent's baseline: the conversion of its lookback episodes contacted within their
-- SLA. A bucket rate or baseline resting on fewer than min_segment_sample episodes is replaced
-- by the `all`-intent figure of the same kind and the row is low_confidence. Value per
-- conversion: over the opportunities that converted the intent's lookback episodes (each once),
-- the mean amount of the won ones times won / closed; 0 where none is closed. The `all` row's
-- money columns are the sums of the intent rows; its rate and value columns are the all-intent
-- figures; it is low_confidence when an intent row with breached episodes is. Conversion unknown (no opportunity loaded at all): money, rates and values null.

{#- The three bounds, written once and expanded in every CTE that carries them:
    (level, baseline figure, delay-bucket figure); uplift_<level> = max(0, baseline - bucket). #}
{%- set uplift_bounds = [
    ('low', 'baseline_ci_low', 'bucket_ci_high'),
    ('mid', 'baseline_rate', 'bucket_rate'),
    ('high', 'baseline_ci_high', 'bucket_ci_low'),
] %}
{#- The figures an intent takes from the `all` row when resting on fewer than min_segment_sample
    episodes: baseline columns of baseline_rates, and (output, input) columns of bucket_rates. #}
{%- set baseline_fallback_columns = ['baseline_rate', 'baseline_ci_low', 'baseline_ci_high', 'baseline_episodes'] %}
{%- set bucket_fallback_columns = [
    ('bucket_rate', 'conversion_rate'),
    ('bucket_ci_low', 'ci_low'),
    ('bucket_ci_high', 'ci_high'),
] %}

with episodes as (

    select * from {{ ref('fct_missed_call_episodes') }}
    where not is_noise

),

lookback as (

    select * from episodes where is_in_revenue_lookback

),

conversion_known as (

    select count(*) > 0 as is_conversion_known from {{ ref('int_crm_opportunities_deduplicated') }}

),

intents as (

    select 'high_intent' as intent
    union all select 'service' as intent
    union all select 'informational' as intent
    union all select 'wrong_or_spam' as intent

),

intents_and_all as (

    select intent from intents
    union all
    select 'all' as intent

),

weeks as (

    select distinct week_start from {{ ref('fct_calls') }}
    where is_inbound and week_start is not null
    union
    select distinct week_start from {{ ref('fct_missed_call_episodes') }}
    where week_start is not null

),

bucket_rates as (

    select intent, delay_bucket, episodes, conversion_rate, ci_low, ci_high
    from {{ ref('mart_conversion_by_delay_bucket') }}

),

-- baseline: lookback episodes contacted (connected callback or inbound recovery) within SLA
baseline_counts as (

    select
        case when grouping(intent) = 1 then 'all' else intent end as intent,
        count(*) as baseline_episodes,
        sum(case when converted then 1 else 0 end) as baseline_conversions
    from lookback
    where is_contacted_within_sla
    group by grouping sets ((intent), ())

),

sample_counts as (

    select
        case when grouping(intent) = 1 then 'all' else intent end as intent,
        count(*) as sample_episodes
    from lookback
    group by grouping sets ((intent), ())

),

baselines as (

    select
        intents_and_all.intent,
        coalesce(baseline_counts.baseline_episodes, 0) as baseline_episodes,
        case
            when conversion_known.is_conversion_known then coalesce(baseline_counts.baseline_conversions, 0)
        end as baseline_conversions,
        coalesce(sample_counts.sample_episodes, 0) as sample_episodes
    from intents_and_all
    cross join conversion_known
    left join baseline_counts
        on intents_and_all.intent = baseline_counts.intent
    left join sample_counts
        on intents_and_all.intent = sample_counts.intent

),

baseline_rates as (

    select
        intent,
        baseline_episodes,
        sample_episodes,
        cast(baseline_conversions as double) / nullif(baseline_episodes, 0) as baseline_rate,
        {{ wilson_low('baseline_conversions', 'baseline_episodes', var('wilson_z')) }} as baseline_ci_low,
        {{ wilson_high('baseline_conversions', 'baseline_episodes', var('wilson_z')) }} as baseline_ci_high
    from baselines

),

converting_opportunities as (

    select distinct
        lookback.intent,
        matched.opportunity_id,
        matched.amount,
        matched.is_won,
        matched.is_closed
    from lookback
    inner join {{ ref('int_episode_conversions_matched') }} as matched
        on lookback.episode_id = matched.episode_id

),

all_converting_opportunities as (

    select distinct
        'all' as intent,
        opportunity_id,
        amount,
        is_won,
        is_closed
    from converting_opportunities

),

value_inputs as (

    select
        intent,
        avg(case when is_won then amount end) as mean_won_amount,
        sum(case when is_won then 1 else 0 end) as won_opportunities,
        sum(case when is_closed then 1 else 0 end) as closed_opportunities
    from converting_opportunities
    group by intent

    union all

    select
        intent,
        avg(case when is_won then amount end) as mean_won_amount,
        sum(case when is_won then 1 else 0 end) as won_opportunities,
        sum(case when is_closed then 1 else 0 end) as closed_opportunities
    from all_converting_opportunities
    group by intent

),

conversion_values as (

    select
        intents_and_all.intent,
        case
            when not conversion_known.is_conversion_known then cast(null as double)
            when coalesce(value_inputs.closed_opportunities, 0) = 0 then 0.0
            else coalesce(value_inputs.mean_won_amount, 0.0)
                * cast(value_inputs.won_opportunities as double) / value_inputs.closed_opportunities
        end as value_per_conversion
    from intents_and_all
    cross join conversion_known
    left join value_inputs
        on intents_and_all.intent = value_inputs.intent

),

-- the rates in force for each intent's baseline (fallback to `all` below the sample size)
effective_baselines as (

    select
        own.intent,
        own.baseline_episodes < {{ var('min_segment_sample') }} as is_baseline_fallback,
        {%- for column in baseline_fallback_columns %}
        case when own.baseline_episodes < {{ var('min_segment_sample') }} then overall.{{ column }} else own.{{ column }} end as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from baseline_rates as own
    inner join baseline_rates as overall
        on overall.intent = 'all'
    where own.intent <> 'all'

),

breached as (

    select episode_id, week_start, intent, delay_bucket
    from episodes
    where sla_status = 'breached'

),

scored as (

    select
        breached.episode_id,
        breached.week_start,
        breached.intent,
        coalesce(own_bucket.episodes, 0) < {{ var('min_segment_sample') }} as is_bucket_fallback,
        effective_baselines.is_baseline_fallback,
        {%- for output, column in bucket_fallback_columns %}
        case when coalesce(own_bucket.episodes, 0) < {{ var('min_segment_sample') }} then all_bucket.{{ column }} else own_bucket.{{ column }} end as {{ output }},
        {%- endfor %}
        effective_baselines.baseline_rate,
        effective_baselines.baseline_ci_low,
        effective_baselines.baseline_ci_high,
        conversion_values.value_per_conversion
    from breached
    left join bucket_rates as own_bucket
        on breached.intent = own_bucket.intent
        and breached.delay_bucket = own_bucket.delay_bucket
    left join bucket_rates as all_bucket
        on all_bucket.intent = 'all'
        and breached.delay_bucket = all_bucket.delay_bucket
    left join effective_baselines
        on breached.intent = effective_baselines.intent
    left join conversion_values
        on breached.intent = conversion_values.intent

),

uplifts as (

    select
        scored.*,
        {%- for level, baseline, bucket in uplift_bounds %}
        case
            when {{ baseline }} - {{ bucket }} > 0 then {{ baseline }} - {{ bucket }} else 0.0
        end as uplift_{{ level }},
        {%- endfor %}
        (
            baseline_rate is null or bucket_rate is null
            or baseline_ci_low is null or bucket_ci_low is null
        ) as is_rate_missing
    from scored

),

weekly as (

    select
        week_start,
        intent,
        count(*) as breached_episodes,
        {%- for level, _, _ in uplift_bounds %}
        sum(uplift_{{ level }} * value_per_conversion) as revenue_at_risk_{{ level }},
        {%- endfor %}
        max(case when is_bucket_fallback or is_baseline_fallback or is_rate_missing then 1 else 0 end) as any_low_confidence
    from uplifts
    group by week_start, intent

),

intent_rows as (

    select
        weeks.week_start,
        intents.intent,
        coalesce(weekly.breached_episodes, 0) as breached_episodes,
        conversion_values.value_per_conversion,
        {%- for level, _, _ in uplift_bounds %}
        case
            when conversion_known.is_conversion_known then coalesce(weekly.revenue_at_risk_{{ level }}, 0.0)
        end as revenue_at_risk_{{ level }},
        {%- endfor %}
        effective_baselines.baseline_rate,
        effective_baselines.baseline_ci_low,
        effective_baselines.baseline_ci_high,
        effective_baselines.baseline_episodes,
        baseline_rates.sample_episodes,
        (
            coalesce(weekly.any_low_confidence, 0) = 1
            or effective_baselines.is_baseline_fallback
        ) as low_confidence
    from weeks
    cross join intents
    cross join conversion_known
    left join weekly
        on weeks.week_start = weekly.week_start
        and intents.intent = weekly.intent
    left join conversion_values
        on intents.intent = conversion_values.intent
    left join effective_baselines
        on intents.intent = effective_baselines.intent
    left join baseline_rates
        on intents.intent = baseline_rates.intent

),

all_rows as (

    select
        intent_rows.week_start,
        'all' as intent,
        sum(intent_rows.breached_episodes) as breached_episodes,
        max(conversion_values.value_per_conversion) as value_per_conversion,
        {%- for level, _, _ in uplift_bounds %}
        sum(intent_rows.revenue_at_risk_{{ level }}) as revenue_at_risk_{{ level }},
        {%- endfor %}
        max(baseline_rates.baseline_rate) as baseline_rate,
        max(baseline_rates.baseline_ci_low) as baseline_ci_low,
        max(baseline_rates.baseline_ci_high) as baseline_ci_high,
        max(baseline_rates.baseline_episodes) as baseline_episodes,
        max(baseline_rates.sample_episodes) as sample_episodes,
        -- money rests on a fallback rate only through intent rows that have breached episodes
        max(case when intent_rows.low_confidence and intent_rows.breached_episodes > 0 then 1 else 0 end) = 1 as low_confidence
    from intent_rows
    inner join conversion_values
        on conversion_values.intent = 'all'
    inner join baseline_rates
        on baseline_rates.intent = 'all'
    group by intent_rows.week_start

),

unioned as (

    select * from intent_rows
    union all
    select * from all_rows

),

final as (

    select
        {{ as_of_utc() }} as as_of_utc,
        week_start,
        intent,
        cast(breached_episodes as integer) as breached_episodes,
        cast(value_per_conversion as double) as value_per_conversion,
        {%- for level, _, _ in uplift_bounds %}
        cast(revenue_at_risk_{{ level }} as double) as revenue_at_risk_{{ level }},
        {%- endfor %}
        cast(baseline_rate as double) as baseline_rate,
        cast(baseline_ci_low as double) as baseline_ci_low,
        cast(baseline_ci_high as double) as baseline_ci_high,
        cast(baseline_episodes as integer) as baseline_episodes,
        cast({{ var('revenue_lookback_days') }} as integer) as lookback_days,
        cast({{ var('revenue_interval') }} as double) as {{ adapter.quote('interval') }},
        cast({{ var('wilson_z') }} as double) as wilson_z,
        cast({{ var('min_segment_sample') }} as integer) as min_segment_sample,
        cast(sample_episodes as integer) as sample_episodes,
        low_confidence
    from unioned

)

select * from final

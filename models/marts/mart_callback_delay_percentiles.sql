-- Callback rates and delay percentiles per week and per grouping set of intent, hours segment
-- and source (metrics.md section 5): the eight grouping sets, each dimension either a value or
-- `all`, always per week. Computed from the non-noise episodes themselves, never averaged
-- across groups. Percentiles are continuous (linear interpolation) over the episodes that have
-- the delay; episodes without it are the complement of the matching rate. The three percentiles
-- of a delay come from one aggregate (percentiles_cont: one sort, not three).
{#- each delay (output name, episode column) and its percentiles (column prefix, fraction) -#}
{%- set delays = [
    ('attempt_minutes', 'attempt_delay_minutes'),
    ('contact_minutes', 'contact_delay_minutes'),
    ('attempt_business_minutes', 'attempt_delay_business_minutes'),
    ('contact_business_minutes', 'contact_delay_business_minutes'),
] %}
{%- set labels = ['p50', 'p90', 'p95'] %}
{%- set fractions = [0.5, 0.9, 0.95] %}
with episodes as (

    select
        week_start,
        intent,
        hours_segment,
        coalesce(source, '(none)') as source,
        first_attempt_at_utc,
        first_contact_at_utc,
        has_connected_callback,
        attempt_delay_minutes,
        contact_delay_minutes,
        attempt_delay_business_minutes,
        contact_delay_business_minutes,
        sla_status
    from {{ ref('fct_missed_call_episodes') }}
    where not is_noise

),

aggregated as (

    select
        week_start,
        case when grouping(intent) = 1 then 'all' else intent end as intent,
        case when grouping(hours_segment) = 1 then 'all' else hours_segment end as hours_segment,
        case when grouping(source) = 1 then 'all' else source end as source,
        count(*) as episodes,
        sum(case when first_attempt_at_utc is not null then 1 else 0 end) as attempted_episodes,
        sum(case when first_contact_at_utc is not null then 1 else 0 end) as contacted_episodes,
        sum(case when has_connected_callback then 1 else 0 end) as completed_episodes,
        {%- for name, column in delays %}
        {{ percentiles_cont(column, fractions) }} as {{ name }}_percentiles,
        {%- endfor %}
        sum(case when sla_status = 'breached' then 1 else 0 end) as sla_breaches,
        sum(case when sla_status = 'met' then 1 else 0 end) as sla_met
    from episodes
    group by grouping sets (
        (week_start, intent, hours_segment, source),
        (week_start, intent, hours_segment),
        (week_start, intent, source),
        (week_start, hours_segment, source),
        (week_start, intent),
        (week_start, hours_segment),
        (week_start, source),
        (week_start)
    )

),

final as (

    select
        {{ as_of_utc() }} as as_of_utc,
        week_start,
        intent,
        hours_segment,
        source,
        cast(episodes as integer) as episodes,
        cast(attempted_episodes as integer) as attempted_episodes,
        cast(contacted_episodes as integer) as contacted_episodes,
        cast(completed_episodes as integer) as completed_episodes,
        cast(attempted_episodes as double) / nullif(episodes, 0) as callback_attempt_rate,
        cast(contacted_episodes as double) / nullif(episodes, 0) as contact_rate,
        cast(completed_episodes as double) / nullif(episodes, 0) as callback_completion_rate,
        {%- for name, column in delays %}
        {%- for label in labels %}
        cast({{ list_item(name ~ '_percentiles', loop.index) }} as double) as {{ label }}_{{ name }},
        {%- endfor %}
        {%- endfor %}
        cast(sla_breaches as integer) as sla_breaches,
        cast(sla_met as integer) as sla_met,
        cast(sla_breaches as double) / nullif(sla_breaches + sla_met, 0) as sla_breach_rate
    from aggregated

)

select * from final

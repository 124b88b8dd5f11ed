-- CRM clock skew (metrics.md sections 4 and 7): over pairs of a PBX call and a CRM activity
-- that references it, skew = CRM logged time - PBX call start, in seconds. The signed median
-- per UTC date of the PBX start (skew_scope `date`) and over all pairs (skew_scope `all`,
-- skew_date null). CRM-only callbacks are corrected by these medians.
with pairs as (

    select
        cast(call_started_at_utc as date) as skew_date,
        {{ seconds_between('call_started_at_utc', 'logged_at_utc') }} as skew_seconds
    from {{ ref('int_crm_activity_calls_linked') }}
    where logged_at_utc is not null
        and call_started_at_utc is not null

),

aggregated as (

    select
        case when grouping(skew_date) = 1 then 'all' else 'date' end as skew_scope,
        skew_date,
        count(*) as pairs,
        cast({{ percentile_cont('skew_seconds', 0.5) }} as double) as median_skew_seconds
    from pairs
    group by grouping sets ((skew_date), ())

),

final as (

    select * from aggregated where pairs > 0

)

select * from final

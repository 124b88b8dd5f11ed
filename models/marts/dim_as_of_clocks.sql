-- The as-of time of this build (metrics.md: the var as_of, else the latest leg start loaded)
-- and each site's business clock then (its cumulative open seconds, from the site calendar):
-- what marts.fct_missed_call_episodes, a view over fct_missed_call_episodes_stored, reads to
-- compute its as-of columns (as_of_utc, minutes_to_sla, sla_status, is_in_revenue_lookback).
-- One row without a site carries the as-of instant for every episode; one row a site carries
-- its clock. A few rows, rebuilt on every build.
with segments as (

    select * from {{ ref('stg_calendar__site_segments') }}

),

as_of as (

    select {{ as_of_utc() }} as as_of_utc

),

-- one row a site: the segment holding the as-of instant
site_as_of as (

    {{ site_cumulative_at_as_of('segments', 'as_of') }}

),

final as (

    select
        as_of.as_of_utc,
        cast(null as {{ dbt.type_string() }}) as site,
        cast(null as double) as cumulative_open_seconds
    from as_of

    union all

    select
        as_of.as_of_utc,
        site_as_of.site,
        cast(site_as_of.cumulative_at_as_of as double) as cumulative_open_seconds
    from site_as_of
    cross join as_of

)

select * from final

-- The business's own numbers: every tracking number and every line of the sites seed.
with sites as (

    select site, business_lines from {{ ref('sites') }}

),

site_lines as (

    select
        site,
        {{ explode_split('business_lines', ' ') }} as business_line
    from sites

),

tracking as (

    select distinct tracking_number as business_line from {{ ref('int_tracking_numbers') }}

),

unioned as (

    select business_line, 'site' as line_kind from site_lines where business_line <> ''
    union all
    select business_line, 'tracking' as line_kind from tracking

),

final as (

    select
        business_line,
        min(line_kind) as line_kind
    from unioned
    group by business_line

)

select * from final

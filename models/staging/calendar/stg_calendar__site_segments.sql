with source as (

    select * from {{ source('raw', 'site_calendar') }}

),

renamed as (

    select
        site,
        segment_start_utc,
        segment_end_utc,
        is_open,
        cast(open_seconds_before as double) as open_seconds_before,
        cast({{ seconds_between('segment_start_utc', 'segment_end_utc') }} as double) as segment_seconds

    from source

)

select * from renamed

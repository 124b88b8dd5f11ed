-- Tracking-number campaign windows, one row per (number, valid_from), newest delivery wins.
with tracking as (

    select * from {{ ref('stg_marketing__tracking_numbers') }}
    where tracking_number is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by tracking_number, valid_from_utc
            order by load_seq desc nulls last, source_line desc nulls last
        ) as copy_rank
    from tracking

),

final as (

    select
        tracking_number,
        campaign,
        source,
        channel,
        default_intent,
        valid_from_utc,
        valid_to_utc
    from ranked
    where copy_rank = 1

)

select * from final

-- One row per (source_system, call_id): the same leg delivered in several exports is one leg;
-- the copy from the newest export file wins (highest load_seq, then the later line).
with legs as (

    select * from {{ ref('stg_telephony__legs') }}

),

ranked as (

    select
        *,
        row_number() over (
            partition by source_system, call_id
            order by load_seq desc nulls last, source_line desc nulls last
        ) as copy_rank,
        count(*) over (partition by source_system, call_id) as copies_delivered

    from legs

),

final as (

    select * from ranked where copy_rank = 1

)

select * from final

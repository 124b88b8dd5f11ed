-- One row per activity_id: the copy from the newest export file wins (highest load_seq, then the
-- later line of that file).
with activities as (

    select * from {{ ref('stg_crm__activities') }}
    where activity_id is not null and trim(activity_id) <> ''

),

ranked as (

    select
        *,
        row_number() over (
            partition by activity_id
            order by load_seq desc nulls last, source_line desc nulls last
        ) as copy_rank
    from activities

),

final as (

    select * from ranked where copy_rank = 1

)

select * from final

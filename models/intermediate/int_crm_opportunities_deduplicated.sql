-- One row per opportunity_id: the copy from the newest export file wins (highest load_seq, then the
-- later line of that file).
with opportunities as (

    select * from {{ ref('stg_crm__opportunities') }}
    where opportunity_id is not null and trim(opportunity_id) <> ''

),

ranked as (

    select
        *,
        row_number() over (
            partition by opportunity_id
            order by load_seq desc nulls last, source_line desc nulls last
        ) as copy_rank
    from opportunities

),

final as (

    select * from ranked where copy_rank = 1

)

select * from final

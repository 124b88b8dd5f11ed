-- One row per contact_id: the copy from the newest export file wins (highest load_seq, then the
-- later line of that file).
with contacts as (

    select * from {{ ref('stg_crm__contacts') }}
    where contact_id is not null and trim(contact_id) <> ''

),

ranked as (

    select
        *,
        row_number() over (
            partition by contact_id
            order by load_seq desc nulls last, source_line desc nulls last
        ) as copy_rank
    from contacts

),

final as (

    select * from ranked where copy_rank = 1

)

select * from final

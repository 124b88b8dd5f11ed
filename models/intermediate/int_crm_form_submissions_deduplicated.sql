-- One row per submission_id: the copy from the newest export file wins (highest load_seq, then the
-- later line of that file).
with form_submissions as (

    select * from {{ ref('stg_crm__form_submissions') }}
    where submission_id is not null and trim(submission_id) <> ''

),

ranked as (

    select
        *,
        row_number() over (
            partition by submission_id
            order by load_seq desc nulls last, source_line desc nulls last
        ) as copy_rank
    from form_submissions

),

final as (

    select * from ranked where copy_rank = 1

)

select * from final

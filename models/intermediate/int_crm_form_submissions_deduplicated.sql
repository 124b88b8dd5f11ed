-- One row per submission_id: the copy from the newest export file wins (highest load_seq, then the
-- later line of that file). Rows without a submission_id are left out. The ranking is
-- macros/latest_copies.sql (shared by every deduplicated export).
with {{ latest_copies(
    'latest_form_submissions',
    ref('stg_crm__form_submissions'),
    ['submission_id'],
    where="submission_id is not null and trim(submission_id) <> ''"
) }},

final as (

    select * from latest_form_submissions

)

select * from final

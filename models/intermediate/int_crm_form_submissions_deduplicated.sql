-- One row per submission_id: the copy from the newest export file wins (highest load_seq, then the
-- later line of that file). Rows without a submission_id are left out. The ranking is
-- macros/latest_copies.sql (shared by every deduplicated export).
-- Incremental on DuckDB (macros/incremental.sql, per-record models): a build after new loads
-- takes the newest copy of the ids with a new copy and keeps the other rows.
{{ ringledger.per_record_config('submission_id', 'stg_crm__form_submissions') }}
with {{ latest_copies(
    'latest_form_submissions',
    ref('stg_crm__form_submissions'),
    ['submission_id'],
    where="submission_id is not null and trim(submission_id) <> ''",
    new_keys_only=true
) }},

final as (

    select * from latest_form_submissions

)

select * from final

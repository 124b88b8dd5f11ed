-- One row per activity_id: the copy from the newest export file wins (highest load_seq, then the
-- later line of that file). Rows without a activity_id are left out. The ranking is
-- macros/latest_copies.sql (shared by every deduplicated export).
with {{ latest_copies(
    'latest_activities',
    ref('stg_crm__activities'),
    ['activity_id'],
    where="activity_id is not null and trim(activity_id) <> ''"
) }},

final as (

    select * from latest_activities

)

select * from final

-- One row per opportunity_id: the copy from the newest export file wins (highest load_seq, then the
-- later line of that file). Rows without a opportunity_id are left out. The ranking is
-- macros/latest_copies.sql (shared by every deduplicated export).
-- Incremental on DuckDB (macros/incremental.sql, per-record models): a build after new loads
-- takes the newest copy of the ids with a new copy and keeps the other rows.
{{ ringledger.per_record_config('opportunity_id', 'stg_crm__opportunities') }}
with {{ latest_copies(
    'latest_opportunities',
    ref('stg_crm__opportunities'),
    ['opportunity_id'],
    where="opportunity_id is not null and trim(opportunity_id) <> ''",
    new_keys_only=true
) }},

final as (

    select * from latest_opportunities

)

select * from final

-- One row per (source_system, call_id): the same leg delivered in several exports is one leg;
-- the copy from the newest export file wins (highest load_seq, then the later line), with the
-- number of copies delivered. The ranking is macros/latest_copies.sql (shared by every
-- deduplicated export).
-- Incremental on DuckDB (macros/incremental.sql): a build after new loads deletes the legs
-- with a copy loaded after the watermark, appends their newest copy (one of the new rows) with
-- every copy counted, and keeps the other legs. int_calls_touched lists these legs' call_ids
-- for the per-call models after it.
{{ ringledger.per_record_config(['source_system', 'call_id'], 'stg_telephony__legs') }}
with {{ latest_copies(
    'latest_legs',
    ref('stg_telephony__legs'),
    ['source_system', 'call_id'],
    count_copies=true,
    new_keys_only=true
) }},

final as (

    select * from latest_legs

)

select * from final

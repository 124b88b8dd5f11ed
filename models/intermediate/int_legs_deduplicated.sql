-- One row per (source_system, call_id): the same leg delivered in several exports is one leg;
-- the copy from the newest export file wins (highest load_seq, then the later line), with the
-- number of copies delivered. The ranking is macros/latest_copies.sql (shared by every
-- deduplicated export).
-- Incremental on DuckDB (macros/incremental.sql): a build after new loads ranks again every
-- copy of the call_ids that got a new copy and keeps the other legs.
-- depends_on: {{ ref('int_calls_touched') }}
{{ ringledger.per_call_config('leg') }}
with {{ latest_copies(
    'latest_legs',
    ref('stg_telephony__legs'),
    ['source_system', 'call_id'],
    where=ringledger.in_changed('call_id', 'leg'),
    count_copies=true
) }},

final as (

    select * from latest_legs

)

select * from final

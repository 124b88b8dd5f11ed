-- One row per (source_system, call_id): the same leg delivered in several exports is one leg;
-- the copy from the newest export file wins (highest load_seq, then the later line), with the
-- number of copies delivered. The ranking is macros/latest_copies.sql (shared by every
-- deduplicated export).
with {{ latest_copies(
    'latest_legs',
    ref('stg_telephony__legs'),
    ['source_system', 'call_id'],
    count_copies=true
) }},

final as (

    select * from latest_legs

)

select * from final

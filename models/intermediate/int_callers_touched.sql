-- The caller numbers an incremental build of int_missed_call_episodes_collapsed recomputes
-- (macros/incremental.sql, per-caller models): an episode is a caller number's time line of
-- misses and answered inbound calls, so every number whose calls or whose misses' noise flags
-- may have changed since the watermark is recomputed whole. A superset: both numbers (from
-- and to) of
-- - every copy of a leg with a new copy (int_calls_touched 'leg'): the numbers the leg had
--   before and has now (a corrected copy can change them);
-- - every current leg of a recomputed call (int_calls_touched 'root'): the numbers its
--   representative leg can have;
-- - every current leg of a call that any copy of an activity with a new copy names by
--   pbx_call_id (int_calls_touched 'named_root': a wrong_number / spam disposition makes a
--   miss noise).
-- The number-less misses are recomputed by call (in_touched_callers, numberless_call_keys).
-- Empty on a full refresh and where the per-call models are plain tables (Spark).
with touched as (

    select kind, call_id from {{ ref('int_calls_touched') }}

),

roots as (

    select distinct call_id from ({{ ringledger.recomputed_call_roots() }}) as recomputed

),

numbers as (

    select copies.from_number_e164, copies.to_number_e164
    from {{ ref('stg_telephony__legs') }} as copies
    inner join touched
        on touched.kind = 'leg'
        and copies.call_id = touched.call_id

    union all

    select legs.from_number_e164, legs.to_number_e164
    from {{ ref('int_legs_deduplicated') }} as legs
    inner join roots
        on coalesce(legs.parent_call_id, legs.call_id) = roots.call_id

),

final as (

    select from_number_e164 as caller_number_e164 from numbers where from_number_e164 is not null

    union

    select to_number_e164 as caller_number_e164 from numbers where to_number_e164 is not null

)

select * from final

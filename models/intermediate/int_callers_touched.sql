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
-- recompute_from_utc: the earliest start of any of those legs' calls (over every leg listed
-- for the call: its current legs and the touched copies, so at or before the call's start
-- before and after the build), over the calls naming the number. Every call of the number
-- that the build can change starts then or later, which bounds the episodes the rest of the
-- chain recomputes (macros/incremental.sql, scoped_episodes). Never null: the ingest rejects a
-- leg without a start.
-- Empty on a full refresh and where the per-call models are plain tables (Spark).
with touched as (

    select kind, call_id from {{ ref('int_calls_touched') }}

),

roots as (

    select distinct call_id from ({{ ringledger.recomputed_call_roots() }}) as recomputed

),

-- both numbers of each listed leg, with the root call it belongs to in that copy
numbers as (

    select
        coalesce(copies.parent_call_id, copies.call_id) as root_call_id,
        copies.from_number_e164,
        copies.to_number_e164,
        copies.started_at_utc
    from {{ ref('stg_telephony__legs') }} as copies
    inner join touched
        on touched.kind = 'leg'
        and copies.call_id = touched.call_id

    union all

    select
        roots.call_id as root_call_id,
        legs.from_number_e164,
        legs.to_number_e164,
        legs.started_at_utc
    from {{ ref('int_legs_deduplicated') }} as legs
    inner join roots
        on coalesce(legs.parent_call_id, legs.call_id) = roots.call_id

),

-- a call starts at its earliest leg (int_calls): the earliest listed leg of the root is at or
-- before its start, whichever of its copies the call had
root_starts as (

    select root_call_id, min(started_at_utc) as root_started_at_utc
    from numbers
    group by root_call_id

),

numbers_started as (

    select numbers.from_number_e164, numbers.to_number_e164, root_starts.root_started_at_utc
    from numbers
    inner join root_starts
        on numbers.root_call_id = root_starts.root_call_id

),

callers as (

    select from_number_e164 as caller_number_e164, root_started_at_utc
    from numbers_started
    where from_number_e164 is not null

    union all

    select to_number_e164 as caller_number_e164, root_started_at_utc
    from numbers_started
    where to_number_e164 is not null

),

final as (

    select caller_number_e164, min(root_started_at_utc) as recompute_from_utc
    from callers
    group by caller_number_e164

)

select * from final

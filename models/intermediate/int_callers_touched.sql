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
--   pbx_call_id (a wrong_number / spam disposition makes a miss noise).
-- Empty on a full refresh and where the per-call models are plain tables (Spark).
with touched as (

    select kind, call_id from {{ ref('int_calls_touched') }}

),

new_activities as (

    select distinct activity_id
    from {{ ref('stg_crm__activities') }}
    where {{ ringledger.loaded_after_watermark() }}

),

named_calls as (

    select distinct activities.pbx_call_id
    from {{ ref('stg_crm__activities') }} as activities
    inner join new_activities
        on activities.activity_id = new_activities.activity_id
    where activities.pbx_call_id is not null

),

-- the roots of the calls those activities name: by a leg's id or its parent's id, as
-- int_crm_activity_calls_linked links them
named_roots as (

    select coalesce(legs.parent_call_id, legs.call_id) as call_id
    from {{ ref('int_legs_deduplicated') }} as legs
    inner join named_calls
        on legs.call_id = named_calls.pbx_call_id

    union

    select coalesce(legs.parent_call_id, legs.call_id) as call_id
    from {{ ref('int_legs_deduplicated') }} as legs
    inner join named_calls
        on legs.parent_call_id = named_calls.pbx_call_id

),

roots as (

    select call_id from touched where kind = 'root'

    union

    select call_id from named_roots

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

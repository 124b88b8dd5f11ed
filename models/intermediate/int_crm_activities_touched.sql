-- The CRM activities an incremental build of int_crm_activity_calls_linked recomputes
-- (macros/incremental.sql, per-record models). An activity's links are the legs its
-- pbx_call_id names (a leg's id or its parent's id) and those legs' calls; they change when the
-- activity has a new copy, when a leg it names got a new copy (the leg's parent may have
-- moved), or when a call it is linked to was recomputed. A superset:
-- - the activities with a copy loaded after the watermark;
-- - the activities whose pbx_call_id is a leg id with a new copy or a root id of
--   int_calls_touched (every parent of a copy of such a leg, every recomputed call), or the id
--   of a current leg of a recomputed call.
-- Empty on a full refresh and where the per-call models are plain tables (Spark).
with touched as (

    select kind, call_id from {{ ref('int_calls_touched') }}

),

named_ids as (

    select call_id from touched

    union

    select legs.call_id
    from {{ ref('int_legs_deduplicated') }} as legs
    inner join touched
        on touched.kind = 'root'
        and coalesce(legs.parent_call_id, legs.call_id) = touched.call_id

),

final as (

    select activity_id
    from {{ ref('stg_crm__activities') }}
    where {{ ringledger.loaded_after_watermark() }}
        and activity_id is not null

    union

    select activities.activity_id
    from {{ ref('int_crm_activities_deduplicated') }} as activities
    inner join named_ids
        on activities.pbx_call_id = named_ids.call_id

)

select * from final

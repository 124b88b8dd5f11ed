-- The calls an incremental build of the per-call models recomputes (macros/incremental.sql):
-- kind 'leg', the leg call_ids with a copy loaded after the watermark (raw.build_state); kind
-- 'root', the root call ids of every copy of those legs (a corrected copy may move a leg to
-- another parent: both calls change) and of the Asterisk legs whose uniqueid or root id is
-- the callid of a queue_log event loaded after the watermark; kind 'named_root', the root call
-- ids of every current leg of a call that any copy of a CRM activity with a new copy names by
-- pbx_call_id (a wrong_number / spam disposition makes its miss noise: the episode chain
-- recomputes those calls' episodes, int_callers_touched). A superset: the models match call
-- ids without their source system; each row also carries the source system it came from, so
-- that the call keys of the roots can be formed (macros/incremental.sql,
-- numberless_call_keys). Empty on a full refresh and where the per-call models are plain
-- tables (Spark): nothing reads it then.
with new_legs as (

    select distinct source_system, call_id
    from {{ ref('stg_telephony__legs') }}
    where {{ ringledger.loaded_after_watermark() }}

),

new_queue_callids as (

    select distinct callid
    from {{ ref('stg_telephony__queue_events') }}
    where {{ ringledger.loaded_after_watermark() }}
        and callid is not null

),

roots_of_new_legs as (

    select legs.source_system, coalesce(legs.parent_call_id, legs.call_id) as call_id
    from {{ ref('stg_telephony__legs') }} as legs
    inner join new_legs
        on legs.call_id = new_legs.call_id

),

roots_of_new_queue_events as (

    select legs.source_system, coalesce(legs.parent_call_id, legs.call_id) as call_id
    from {{ ref('stg_telephony__legs') }} as legs
    inner join new_queue_callids
        on {{ dbt.split_part('legs.call_id', "'#'", 1) }} = new_queue_callids.callid
        or coalesce(legs.parent_call_id, legs.call_id) = new_queue_callids.callid
    where legs.source_format = 'asterisk_cdr'

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

    select legs.source_system, coalesce(legs.parent_call_id, legs.call_id) as call_id
    from {{ ref('int_legs_deduplicated') }} as legs
    inner join named_calls
        on legs.call_id = named_calls.pbx_call_id

    union

    select legs.source_system, coalesce(legs.parent_call_id, legs.call_id) as call_id
    from {{ ref('int_legs_deduplicated') }} as legs
    inner join named_calls
        on legs.parent_call_id = named_calls.pbx_call_id

),

final as (

    select 'leg' as kind, source_system, call_id from new_legs

    union

    select 'root' as kind, source_system, call_id from roots_of_new_legs

    union

    select 'root' as kind, source_system, call_id from roots_of_new_queue_events

    union

    select 'named_root' as kind, source_system, call_id from named_roots

)

select * from final

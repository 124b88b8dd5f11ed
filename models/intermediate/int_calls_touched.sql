-- The calls an incremental build of the per-call models recomputes (macros/incremental.sql):
-- kind 'leg', the leg call_ids with a copy loaded after the watermark (raw.build_state); kind
-- 'root', the root call ids of every copy of those legs (a corrected copy may move a leg to
-- another parent: both calls change) and of the Asterisk legs whose uniqueid or root id is
-- the callid of a queue_log event loaded after the watermark. A superset: keys are call ids
-- without their source system. Empty on a full refresh and where the per-call models are
-- plain tables (Spark): nothing reads it then.
with new_legs as (

    select distinct call_id
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

    select coalesce(legs.parent_call_id, legs.call_id) as call_id
    from {{ ref('stg_telephony__legs') }} as legs
    inner join new_legs
        on legs.call_id = new_legs.call_id

),

roots_of_new_queue_events as (

    select coalesce(legs.parent_call_id, legs.call_id) as call_id
    from {{ ref('stg_telephony__legs') }} as legs
    inner join new_queue_callids
        on {{ dbt.split_part('legs.call_id', "'#'", 1) }} = new_queue_callids.callid
        or coalesce(legs.parent_call_id, legs.call_id) = new_queue_callids.callid
    where legs.source_format = 'asterisk_cdr'

),

final as (

    select 'leg' as kind, call_id from new_legs

    union

    select 'root' as kind, call_id from roots_of_new_legs

    union

    select 'root' as kind, call_id from roots_of_new_queue_events

)

select * from final

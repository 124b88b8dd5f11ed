-- Asterisk queue_log outcomes per CDR call (inputs-and-outputs.md, asterisk_queue_log): the
-- events of a queue_log `callid` join the CDR call whose leg `uniqueid` (the part of the
-- leg's call_id before `#`) or root id (linkedid/uniqueid) equals it. Per call: the queue
-- entered, the last outcome (CONNECT, ABANDON, EXITWITHTIMEOUT, EXITEMPTY, EXITWITHKEY), the
-- queue wait of that outcome (CONNECT holdtime data1, EXITWITHKEY waittime data4, others
-- waittime data3) and the caller's position when leaving (ABANDON/EXIT*).
-- is_queue_abandoned: the caller left the queue (ABANDON/EXIT*) and no CONNECT was logged;
-- int_calls makes such a call `abandoned` when no person answered it.
with events as (

    select distinct callid, queue, event, event_at_utc, data1, data2, data3, data4
    from {{ ref('stg_telephony__queue_events') }}
    where callid is not null

),

outcomes as (

    select
        callid,
        queue,
        event,
        event_at_utc,
        case event
            when 'CONNECT' then {{ safe_cast('data1', 'double') }}
            when 'EXITWITHKEY' then {{ safe_cast('data4', 'double') }}
            else {{ safe_cast('data3', 'double') }}
        end as wait_seconds,
        case event
            when 'CONNECT' then null
            when 'EXITWITHKEY' then {{ safe_cast('data2', 'integer') }}
            else {{ safe_cast('data1', 'integer') }}
        end as exit_position,
        row_number() over (
            partition by callid order by event_at_utc desc nulls last, event desc nulls last
        ) as outcome_rank
    from events
    where event in ('CONNECT', 'ABANDON', 'EXITWITHTIMEOUT', 'EXITEMPTY', 'EXITWITHKEY')

),

entered as (

    select
        callid,
        queue,
        row_number() over (partition by callid order by event_at_utc asc nulls last, queue asc nulls last) as enter_rank
    from events
    where event = 'ENTERQUEUE' and queue is not null

),

per_callid as (

    select
        coalesce(outcomes.callid, entered.callid) as callid,
        coalesce(entered.queue, outcomes.queue) as queue,
        outcomes.event as queue_outcome,
        outcomes.event_at_utc as outcome_at_utc,
        outcomes.wait_seconds as queue_wait_seconds,
        case when outcomes.event <> 'CONNECT' then outcomes.exit_position end as abandon_position,
        coalesce(connects.callid is not null, false) as is_queue_connected
    from (select * from outcomes where outcome_rank = 1) as outcomes
    full outer join (select * from entered where enter_rank = 1) as entered
        on outcomes.callid = entered.callid
    left join (select distinct callid from events where event = 'CONNECT') as connects
        on connects.callid = coalesce(outcomes.callid, entered.callid)

),

legs as (

    select
        source_system,
        coalesce(parent_call_id, call_id) as call_id_root,
        {{ dbt.split_part('call_id', "'#'", 1) }} as uniqueid
    from {{ ref('int_legs_deduplicated') }}
    where source_format = 'asterisk_cdr'

),

call_ids as (

    select source_system, call_id_root, uniqueid as callid from legs
    union
    select source_system, call_id_root, call_id_root as callid from legs

),

matched as (

    select
        call_ids.source_system,
        call_ids.call_id_root as call_id,
        per_callid.*,
        row_number() over (
            partition by call_ids.source_system, call_ids.call_id_root
            order by per_callid.outcome_at_utc desc nulls last, per_callid.callid
        ) as match_rank
    from call_ids
    inner join per_callid
        on call_ids.callid = per_callid.callid

),

final as (

    select
        source_system,
        call_id,
        callid as queue_callid,
        queue,
        queue_outcome,
        queue_wait_seconds,
        abandon_position,
        is_queue_connected,
        (queue_outcome is not null and queue_outcome <> 'CONNECT' and not is_queue_connected)
            as is_queue_abandoned
    from matched
    where match_rank = 1

)

select * from final

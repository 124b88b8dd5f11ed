-- Logical calls: legs sharing a parent are one call keyed by coalesce(parent_call_id, call_id).
-- Numbers, queue, IVR selection, site and direction come from the parent leg, else from the
-- earliest leg. A call is answered when any leg was answered by a person.
-- Asterisk calls take the queue, queue wait and abandon position of their queue_log events
-- (int_asterisk_queue_calls); leaving the queue unanswered makes an unanswered call abandoned.
-- Performance (docs/benchmarks.md, dbt profile): the call's facts are one hash aggregate; the
-- representative is the root leg itself where it was delivered (a key lookup), and only the
-- calls whose root leg is missing rank their legs with a window (on the key columns). The legs
-- are read in each CTE rather than through one shared CTE, which DuckDB would materialize.
-- Incremental on DuckDB (macros/incremental.sql): a build after new loads recomputes the calls
-- touched by them (their legs are all read again) and keeps the others.
-- depends_on: {{ ref('int_calls_touched') }}
{{ ringledger.per_call_config('root') }}
with leg_facts as (

    select
        source_system,
        coalesce(parent_call_id, call_id) as call_id_root,
        count(*) as legs,
        max(case when call_id = coalesce(parent_call_id, call_id) then 1 else 0 end) = 1 as has_root_leg,
        min(started_at_utc) as started_at_utc,
        max(ended_at_utc) as ended_at_utc,
        min(case when status = 'answered' then answered_at_utc end) as answered_at_utc,
        max(case when status = 'answered' then 1 else 0 end) = 1 as is_answered,
        max(case when status = 'voicemail' then 1 else 0 end) = 1 as has_voicemail_leg,
        min(case when status = 'voicemail' then answered_at_utc end) as voicemail_answered_at_utc,
        max(case when status in ('abandoned', 'canceled') then 1 else 0 end) = 1 as has_abandoned_leg,
        max(case when disposition_normalized in ('wrong_number', 'spam') then 1 else 0 end) = 1
            as has_wrong_number_disposition,
        sum(case when status = 'answered' then talk_seconds end) as talk_seconds
    from {{ ref('int_legs_deduplicated') }}
    where {{ ringledger.in_changed('coalesce(parent_call_id, call_id)', 'root') }}
    group by source_system, coalesce(parent_call_id, call_id)

),

-- calls whose root leg was not delivered: their earliest leg (ties: the smaller call_id)
orphan_leg_ranks as (

    select
        legs.source_system,
        leg_facts.call_id_root,
        legs.call_id,
        row_number() over (
            partition by legs.source_system, leg_facts.call_id_root
            order by legs.started_at_utc asc nulls last, legs.call_id asc nulls last
        ) as leg_rank
    from {{ ref('int_legs_deduplicated') }} as legs
    inner join leg_facts
        on legs.source_system = leg_facts.source_system
        and coalesce(legs.parent_call_id, legs.call_id) = leg_facts.call_id_root
    where not leg_facts.has_root_leg

),

representative_ids as (

    select source_system, call_id_root, call_id_root as call_id
    from leg_facts
    where has_root_leg

    union all

    select source_system, call_id_root, call_id
    from orphan_leg_ranks
    where leg_rank = 1

),

representative as (

    select
        legs.*,
        representative_ids.call_id_root
    from {{ ref('int_legs_deduplicated') }} as legs
    inner join representative_ids
        on legs.source_system = representative_ids.source_system
        and legs.call_id = representative_ids.call_id
    -- a representative leg belongs to its call's root: the same touched set as leg_facts
    where {{ ringledger.in_changed('coalesce(legs.parent_call_id, legs.call_id)', 'root') }}

),

queue_calls as (

    select * from {{ ref('int_asterisk_queue_calls') }}

),

final as (

    select
        {{ surrogate_key(['representative.source_system', 'representative.call_id_root']) }} as call_key,
        representative.source_system,
        representative.call_id_root as call_id,
        representative.direction,
        representative.site,
        coalesce(representative.queue, queue_calls.queue) as queue,
        representative.ivr_selection,
        representative.disposition_normalized as disposition,
        case
            when leg_facts.is_answered then 'answered'
            when leg_facts.has_voicemail_leg then 'voicemail'
            when coalesce(queue_calls.is_queue_abandoned, false) then 'abandoned'
            else representative.status
        end as status,
        leg_facts.legs,
        leg_facts.started_at_utc,
        leg_facts.answered_at_utc,
        leg_facts.ended_at_utc,
        leg_facts.is_answered,
        leg_facts.has_voicemail_leg,
        (
            leg_facts.has_abandoned_leg
            or (coalesce(queue_calls.is_queue_abandoned, false) and not leg_facts.is_answered)
        ) as has_abandoned_leg,
        leg_facts.has_wrong_number_disposition,
        leg_facts.talk_seconds,
        case
            when leg_facts.is_answered then null
            when leg_facts.has_voicemail_leg and leg_facts.voicemail_answered_at_utc is not null
                then {{ seconds_between('leg_facts.started_at_utc', 'leg_facts.voicemail_answered_at_utc') }}
            else {{ seconds_between('leg_facts.started_at_utc', 'leg_facts.ended_at_utc') }}
        end as wait_seconds,
        queue_calls.queue_wait_seconds,
        queue_calls.abandon_position as queue_abandon_position,
        representative.from_number_raw,
        representative.from_number_e164,
        representative.from_number_is_valid,
        representative.from_number_is_unknown,
        representative.from_number_key,
        representative.from_number_digits,
        representative.to_number_raw,
        representative.to_number_e164,
        representative.to_number_is_valid,
        representative.to_number_is_unknown,
        representative.to_number_key,
        representative.to_number_digits
    from representative
    inner join leg_facts
        on representative.source_system = leg_facts.source_system
        and representative.call_id_root = leg_facts.call_id_root
    left join queue_calls
        on representative.source_system = queue_calls.source_system
        and representative.call_id_root = queue_calls.call_id

)

select * from final

-- Logical calls: legs sharing a parent are one call keyed by coalesce(parent_call_id, call_id).
-- Numbers, queue, IVR selection, site and direction come from the parent leg, else from the
-- earliest leg. A call is answered when any leg was answered by a person.
-- Asterisk calls take the queue, queue wait and abandon position of their queue_log events
-- (int_asterisk_queue_calls); leaving the queue unanswered makes an unanswered call abandoned.
-- Performance (docs/benchmarks.md, dbt profile): the call's facts are one hash aggregate; the
-- representative is the root leg itself where it was delivered (a key lookup), and only the
-- calls whose root leg is missing rank their legs with a window (on the key columns). Every
-- join happens on the calls' narrow facts; the wide representative leg is joined once, last
-- (a join DuckDB builds on the wide side costs more than the whole query). The legs are read
-- in each CTE rather than through one shared CTE, which DuckDB would materialize.
-- Incremental on DuckDB (macros/incremental.sql): a build after new loads recomputes the calls
-- touched by them (their legs are all read again, once: touched_rows) and keeps the others.
-- depends_on: {{ ref('int_calls_touched') }}
{{ ringledger.per_call_config('root') }}
with {{ ringledger.touched_rows_cte('touched_legs', ref('int_legs_deduplicated'),
    ringledger.in_changed('coalesce(parent_call_id, call_id)', 'root')) }}

leg_totals as (

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
    from {{ ringledger.touched_rows('touched_legs', ref('int_legs_deduplicated')) }}
    group by source_system, coalesce(parent_call_id, call_id)

),

queue_calls as (

    select * from {{ ref('int_asterisk_queue_calls') }}

),

-- the queue outcome joined to the call's narrow facts, not to the wide representative leg:
-- DuckDB builds this join's hash table on the calls' side whatever their sizes
leg_facts as (

    select
        leg_totals.*,
        queue_calls.queue as queue_from_events,
        queue_calls.is_queue_abandoned,
        queue_calls.queue_wait_seconds,
        queue_calls.abandon_position
    from leg_totals
    left join queue_calls
        on leg_totals.source_system = queue_calls.source_system
        and leg_totals.call_id_root = queue_calls.call_id

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
    from {{ ringledger.touched_rows('touched_legs', ref('int_legs_deduplicated')) }} as legs
    inner join leg_facts
        on legs.source_system = leg_facts.source_system
        and coalesce(legs.parent_call_id, legs.call_id) = leg_facts.call_id_root
    where not leg_facts.has_root_leg

),

-- the call's facts and the call_id of its representative leg, on the calls' narrow columns
-- (joined to the wide leg once, below)
call_facts as (

    select leg_facts.call_id_root as representative_call_id, leg_facts.*
    from leg_facts
    where leg_facts.has_root_leg

    union all

    select orphan_leg_ranks.call_id as representative_call_id, leg_facts.*
    from orphan_leg_ranks
    inner join leg_facts
        on orphan_leg_ranks.source_system = leg_facts.source_system
        and orphan_leg_ranks.call_id_root = leg_facts.call_id_root
    where orphan_leg_ranks.leg_rank = 1

),

representative as (

    select
        legs.*,
        call_facts.representative_call_id,
        call_facts.call_id_root,
        call_facts.legs as call_legs,
        call_facts.started_at_utc as call_started_at_utc,
        call_facts.answered_at_utc as call_answered_at_utc,
        call_facts.ended_at_utc as call_ended_at_utc,
        call_facts.is_answered as call_is_answered,
        call_facts.has_voicemail_leg,
        call_facts.voicemail_answered_at_utc,
        call_facts.has_abandoned_leg,
        call_facts.has_wrong_number_disposition,
        call_facts.talk_seconds as call_talk_seconds,
        call_facts.queue_from_events,
        call_facts.is_queue_abandoned,
        call_facts.queue_wait_seconds,
        call_facts.abandon_position
    from {{ ringledger.touched_rows('touched_legs', ref('int_legs_deduplicated')) }} as legs
    inner join call_facts
        on legs.source_system = call_facts.source_system
        and legs.call_id = call_facts.representative_call_id

),

final as (

    select
        {{ ringledger.call_key('representative.source_system', 'representative.call_id_root') }} as call_key,
        representative.source_system,
        representative.call_id_root as call_id,
        representative.direction,
        representative.site,
        coalesce(representative.queue, representative.queue_from_events) as queue,
        representative.ivr_selection,
        representative.disposition_normalized as disposition,
        case
            when representative.call_is_answered then 'answered'
            when representative.has_voicemail_leg then 'voicemail'
            when coalesce(representative.is_queue_abandoned, false) then 'abandoned'
            else representative.status
        end as status,
        representative.call_legs as legs,
        representative.call_started_at_utc as started_at_utc,
        representative.call_answered_at_utc as answered_at_utc,
        representative.call_ended_at_utc as ended_at_utc,
        representative.call_is_answered as is_answered,
        representative.has_voicemail_leg,
        (
            representative.has_abandoned_leg
            or (coalesce(representative.is_queue_abandoned, false) and not representative.call_is_answered)
        ) as has_abandoned_leg,
        representative.has_wrong_number_disposition,
        representative.call_talk_seconds as talk_seconds,
        case
            when representative.call_is_answered then null
            when representative.has_voicemail_leg and representative.voicemail_answered_at_utc is not null
                then {{ seconds_between('representative.call_started_at_utc', 'representative.voicemail_answered_at_utc') }}
            else {{ seconds_between('representative.call_started_at_utc', 'representative.call_ended_at_utc') }}
        end as wait_seconds,
        representative.queue_wait_seconds,
        representative.abandon_position as queue_abandon_position,
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

)

select * from final

-- Episodes still to call back (inputs-and-outputs.md, Outputs): non-noise episodes with an SLA,
-- not contacted, SLA open or breached, still inside the callback horizon at the as-of time;
-- ordered by priority: intent (high_intent, service, informational, wrong_or_spam), then the
-- business minutes left to the SLA due time (negative when overdue, most overdue first).
-- BI-facing: caller_key only; restricted.callback_worklist adds the number for the agents.
with episodes as (

    select * from {{ ref('fct_missed_call_episodes') }}

),

open_work as (

    select *
    from episodes
    where not is_noise
        and sla_business_minutes is not null
        and first_contact_at_utc is null
        and sla_status in ('open', 'breached')
        and horizon_ends_at_utc >= as_of_utc

),

final as (

    select
        as_of_utc,
        episode_id,
        caller_key,
        intent,
        owner,
        site,
        queue,
        first_missed_at_utc,
        last_missed_at_utc,
        cast(missed_attempts as integer) as missed_attempts,
        cast(callback_attempts as integer) as callback_attempts,
        sla_status,
        sla_due_at_utc,
        cast(minutes_to_sla as double) as minutes_to_sla,
        cast(row_number() over (
            order by
                case intent
                    when 'high_intent' then 1
                    when 'service' then 2
                    when 'informational' then 3
                    else 4
                end asc nulls last,
                minutes_to_sla asc nulls last,
                first_missed_at_utc asc nulls last,
                episode_id asc nulls last
        ) as integer) as priority
    from open_work

)

select * from final

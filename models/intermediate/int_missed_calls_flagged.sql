-- Missed calls up to the as-of time with their noise flags (metrics.md section 2). The first
-- matching reason, in this order, is noise_reason: blocklisted, wrong_number (a wrong_number or
-- spam disposition on a leg of the call or on a CRM activity linked to it by pbx_call_id),
-- short_abandon (the caller hung up after waiting less than short_abandon_seconds),
-- unreachable (caller unknown or number invalid).
-- A view: its two readers (int_missed_call_episodes_collapsed, mart_weekly_summary) filter
-- int_calls_classified to the misses in ~0.4 s each at a year's 1.8 M misses, where writing the
-- wide table took 6.6 s of every build (docs/benchmarks.md).
{{ config(materialized='view') }}
with missed as (

    select * from {{ ref('int_calls_classified') }}
    where is_missed

),

blocklist as (

    select distinct trim(caller_number) as caller_number from {{ ref('caller_blocklist') }}

),

crm_wrong_numbers as (

    select distinct call_key
    from {{ ref('int_crm_activity_calls_linked') }}
    where disposition in ('wrong_number', 'spam')

),

flags as (

    select
        missed.*,
        blocklist.caller_number is not null as is_blocklisted,
        (
            coalesce(missed.has_wrong_number_disposition, false)
            or crm_wrong_numbers.call_key is not null
        ) as is_wrong_number,
        (
            coalesce(missed.has_abandoned_leg, false)
            and missed.wait_seconds < {{ var('short_abandon_seconds') }}
        ) as is_short_abandon,
        (
            coalesce(missed.caller_is_unknown, false)
            or not coalesce(missed.caller_number_is_valid, false)
            or missed.caller_number_e164 is null
        ) as is_unreachable
    from missed
    left join blocklist
        on missed.caller_number_e164 = blocklist.caller_number
    left join crm_wrong_numbers
        on missed.call_key = crm_wrong_numbers.call_key

),

final as (

    select
        flags.*,
        case
            when is_blocklisted then 'blocklisted'
            when is_wrong_number then 'wrong_number'
            when is_short_abandon then 'short_abandon'
            when is_unreachable then 'unreachable'
        end as noise_reason,
        (is_blocklisted or is_wrong_number or is_short_abandon or is_unreachable) as is_noise
    from flags

)

select * from final

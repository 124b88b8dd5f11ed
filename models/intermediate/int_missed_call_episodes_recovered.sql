-- Recovery of each episode (metrics.md section 4), within callback_horizon_days after its first
-- miss ("after" excludes the instant of the miss, "within" includes the limit):
-- callback attempts (outbound calls to the caller's number from any site, PBX or CRM-only),
-- connected callbacks, and inbound recoveries (an inbound call of the caller, to any site,
-- answered by a person: int_episode_inbound_recoveries). first_contact_at is the earlier of
-- the first connected callback and the first inbound recovery; recovered_by says which (a tie
-- goes to the callback).
-- A view: read once, by the next model of the episode chain (classified -> recovered -> timed ->
-- int_missed_call_episodes_enriched, the table), so the chain is not written three times; the
-- stored mart's unique test and not_null constraint on episode_id cover its grain
-- (docs/benchmarks.md).
{{ config(materialized='view') }}
with episodes as (

    select * from {{ ref('int_missed_call_episodes_classified') }}

),

-- the horizons' columns from the collapsed episodes, which the classified view passes through
-- unchanged (one row per episode): `episodes` then has one reader (joined) and streams,
-- instead of the wide classified rows being materialized for two (~0.5 s at a year)
episode_callers as (

    select episode_id, caller_number_e164, first_missed_at_utc
    from {{ ref('int_missed_call_episodes_scoped') }}
    where caller_number_e164 is not null

),

attempts as (

    select caller_number_e164, attempted_at_utc, is_connected
    from {{ ref('int_callback_attempts_unioned') }}

),

horizons as (

    select
        episode_id,
        caller_number_e164,
        first_missed_at_utc,
        {{ ringledger.horizon_ends_at('first_missed_at_utc') }} as horizon_ends_at_utc
    from episode_callers

),

episode_attempts as (

    select
        horizons.episode_id,
        count(*) as callback_attempts,
        min(attempts.attempted_at_utc) as first_attempt_at_utc,
        min(case when attempts.is_connected then attempts.attempted_at_utc end) as first_connected_callback_at_utc,
        sum(case when attempts.is_connected then 1 else 0 end) as connected_callbacks
    from horizons
    inner join attempts
        on horizons.caller_number_e164 = attempts.caller_number_e164
        and attempts.attempted_at_utc > horizons.first_missed_at_utc
        and attempts.attempted_at_utc <= horizons.horizon_ends_at_utc
    group by horizons.episode_id

),

-- inbound recoveries: computed per caller number (incremental on DuckDB) in their own model
episode_inbound as (

    select episode_id, first_inbound_recovery_at_utc
    from {{ ref('int_episode_inbound_recoveries') }}

),

joined as (

    select
        episodes.*,
        horizons.horizon_ends_at_utc,
        coalesce(episode_attempts.callback_attempts, 0) as callback_attempts,
        coalesce(episode_attempts.connected_callbacks, 0) as connected_callbacks,
        episode_attempts.first_attempt_at_utc,
        episode_attempts.first_connected_callback_at_utc,
        episode_inbound.first_inbound_recovery_at_utc
    from episodes
    left join horizons
        on episodes.episode_id = horizons.episode_id
    left join episode_attempts
        on episodes.episode_id = episode_attempts.episode_id
    left join episode_inbound
        on episodes.episode_id = episode_inbound.episode_id

),

recovered as (

    select
        joined.*,
        case
            when first_connected_callback_at_utc is not null
                and (first_inbound_recovery_at_utc is null or first_connected_callback_at_utc <= first_inbound_recovery_at_utc)
                then 'callback'
            when first_inbound_recovery_at_utc is not null then 'inbound'
            else 'none'
        end as recovered_by
    from joined

),

final as (

    select
        recovered.*,
        first_connected_callback_at_utc is not null as has_connected_callback,
        case
            when recovered_by = 'callback' then first_connected_callback_at_utc
            when recovered_by = 'inbound' then first_inbound_recovery_at_utc
        end as first_contact_at_utc,
        case
            when first_attempt_at_utc is not null
                then {{ seconds_between('first_missed_at_utc', 'first_attempt_at_utc') }} / 60.0
        end as attempt_delay_minutes,
        case
            when recovered_by = 'callback'
                then {{ seconds_between('first_missed_at_utc', 'first_connected_callback_at_utc') }} / 60.0
            when recovered_by = 'inbound'
                then {{ seconds_between('first_missed_at_utc', 'first_inbound_recovery_at_utc') }} / 60.0
        end as contact_delay_minutes
    from recovered

)

select * from final

-- The stored part of marts.fct_missed_call_episodes: one row per missed-call episode with
-- every column that does not depend on the as-of time (the mart, a view, computes as_of_utc,
-- minutes_to_sla, sla_status and is_in_revenue_lookback on read from dim_as_of_clocks).
-- BI-facing: caller_key only, never the caller's number. A row changes only when its episode
-- does, so a day's build and the published file's patch write a few thousand rows, not every
-- episode (docs/benchmarks.md, "Twentieth session").
-- Incremental on DuckDB (macros/incremental.sql): a build after new loads writes the episodes
-- int_missed_call_episodes_enriched recomputed since the watermark and deletes the rows of
-- those and of the episodes it no longer holds; every other row stays.
{{ ringledger.replaced_rows_config("{{ ringledger.delete_recomputed_episodes() }}") }}
with episodes as (

    select * from {{ ref('int_missed_call_episodes_enriched') }}
    where {{ ringledger.in_episodes_recomputed() }}

),

final as (

    select
        episode_id,
        first_call_key,
        caller_key,
        site,
        queue,
        ivr_selection,
        owner,
        tracking_number,
        campaign,
        source,
        channel,
        intent,
        cast(intent_rule as integer) as intent_rule,
        is_noise,
        noise_reason,
        first_missed_at_utc,
        last_missed_at_utc,
        cast(missed_attempts as integer) as missed_attempts,
        is_business_hours,
        case when is_business_hours then 'business' else 'after_hours' end as hours_segment,
        first_attempt_at_utc,
        first_connected_callback_at_utc,
        first_inbound_recovery_at_utc,
        first_contact_at_utc,
        recovered_by,
        cast(callback_attempts as integer) as callback_attempts,
        has_connected_callback,
        cast(attempt_delay_minutes as double) as attempt_delay_minutes,
        cast(attempt_delay_business_minutes as double) as attempt_delay_business_minutes,
        cast(contact_delay_minutes as double) as contact_delay_minutes,
        cast(contact_delay_business_minutes as double) as contact_delay_business_minutes,
        delay_bucket,
        cast(delay_bucket_sort_order as integer) as delay_bucket_sort_order,
        cast(sla_business_minutes as double) as sla_business_minutes,
        cast(sla_target_cumulative_seconds as double) as sla_target_cumulative_seconds,
        sla_due_at_utc,
        horizon_ends_at_utc,
        is_contacted_within_sla,
        converted,
        converting_opportunities,
        week_start
    from episodes

)

select * from final

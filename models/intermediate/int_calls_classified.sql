-- Logical calls with the caller identified, internal/inbound/missed classified (metrics.md
-- section 2), the dialed tracking number's campaign at call time, and the local week.
-- Calls starting after the as-of time are loaded but ignored by every metric.
-- Incremental on DuckDB (macros/incremental.sql): a build after new loads classifies again the
-- calls touched by them (read once: touched_rows) and keeps the others (a tracking-number
-- load, a changed seed or var makes the build a full refresh: orchestration/incremental.py).
-- depends_on: {{ ref('int_calls_touched') }}
{{ ringledger.per_call_config('root') }}
with {{ ringledger.touched_rows_cte('touched_calls', ref('int_calls'), ringledger.in_changed('call_id', 'root')) }}

calls as (

    select * from {{ ringledger.touched_rows('touched_calls', ref('int_calls')) }}
    where started_at_utc <= {{ as_of_utc() }}

),

business_lines as (

    select business_line from {{ ref('int_business_lines') }}

),

sites as (

    select site, time_zone from {{ ref('sites') }}

),

tracking as (

    select * from {{ ref('int_tracking_numbers') }}

),

with_caller as (

    select
        calls.*,
        case when calls.direction = 'outbound' then calls.to_number_raw else calls.from_number_raw end as caller_number_raw,
        case when calls.direction = 'outbound' then calls.to_number_e164 else calls.from_number_e164 end as caller_number_e164,
        case when calls.direction = 'outbound' then calls.to_number_is_valid else calls.from_number_is_valid end as caller_number_is_valid,
        case when calls.direction = 'outbound' then calls.to_number_is_unknown else calls.from_number_is_unknown end as caller_is_unknown,
        case when calls.direction = 'outbound' then calls.to_number_key else calls.from_number_key end as caller_key,
        case when calls.direction = 'outbound' then calls.to_number_digits else calls.from_number_digits end as caller_number_digits,
        case when calls.direction = 'outbound' then calls.from_number_e164 else calls.to_number_e164 end as business_number_e164
    from calls

),

flagged as (

    select
        with_caller.*,
        (
            not with_caller.caller_is_unknown
            and (
                caller_line.business_line is not null
                or with_caller.caller_number_digits between 1 and {{ var('internal_extension_max_digits') }}
            )
        ) as is_internal_caller,
        dialed_line.business_line is not null as is_to_business_line
    from with_caller
    left join business_lines as caller_line
        on with_caller.caller_number_e164 = caller_line.business_line
    left join business_lines as dialed_line
        on with_caller.business_number_e164 = dialed_line.business_line

),

-- the dialed tracking number's campaign at call time: when several rows match, the latest
-- valid_from wins, then the first campaign by name. Ranked over the matching (call, tracking
-- row) pairs only, not over every call with all of its columns (and from the calls' key
-- columns, so that DuckDB does not materialize the wide `flagged` CTE for a second reader).
campaign_matches as (

    select
        inbound_calls.call_key,
        tracking.tracking_number,
        tracking.campaign,
        tracking.source,
        tracking.channel,
        tracking.default_intent as campaign_default_intent,
        row_number() over (
            partition by inbound_calls.call_key
            order by tracking.valid_from_utc desc nulls last, tracking.campaign asc nulls last
        ) as campaign_rank
    from {{ ringledger.touched_rows('touched_calls', ref('int_calls')) }} as inbound_calls
    inner join tracking
        on inbound_calls.to_number_e164 = tracking.tracking_number
        and tracking.valid_from_utc <= inbound_calls.started_at_utc
        and (tracking.valid_to_utc is null or inbound_calls.started_at_utc < tracking.valid_to_utc)
    where inbound_calls.direction = 'inbound'
        and inbound_calls.started_at_utc <= {{ as_of_utc() }}

),

with_campaign as (

    select
        flagged.*,
        campaign_matches.tracking_number,
        campaign_matches.campaign,
        campaign_matches.source,
        campaign_matches.channel,
        campaign_matches.campaign_default_intent
    from flagged
    left join campaign_matches
        on flagged.call_key = campaign_matches.call_key
        and campaign_matches.campaign_rank = 1

),

final as (

    select
        with_campaign.call_key,
        with_campaign.source_system,
        with_campaign.call_id,
        case
            when with_campaign.is_internal_caller then 'internal'
            else with_campaign.direction
        end as direction,
        with_campaign.site,
        with_campaign.queue,
        with_campaign.ivr_selection,
        with_campaign.disposition,
        with_campaign.status,
        with_campaign.legs,
        with_campaign.started_at_utc,
        with_campaign.answered_at_utc,
        with_campaign.ended_at_utc,
        with_campaign.is_answered,
        with_campaign.has_voicemail_leg,
        with_campaign.has_abandoned_leg,
        with_campaign.has_wrong_number_disposition,
        with_campaign.wait_seconds,
        with_campaign.talk_seconds,
        with_campaign.caller_number_raw,
        with_campaign.caller_number_e164,
        with_campaign.caller_number_is_valid,
        with_campaign.caller_is_unknown,
        with_campaign.caller_key,
        with_campaign.business_number_e164,
        with_campaign.is_internal_caller,
        (
            with_campaign.direction = 'inbound'
            and with_campaign.is_to_business_line
            and not with_campaign.is_internal_caller
        ) as is_inbound,
        (
            with_campaign.direction = 'inbound'
            and with_campaign.is_to_business_line
            and not with_campaign.is_internal_caller
            and not with_campaign.is_answered
        ) as is_missed,
        with_campaign.tracking_number,
        with_campaign.campaign,
        with_campaign.source,
        with_campaign.channel,
        with_campaign.campaign_default_intent,
        sites.time_zone as site_time_zone,
        cast({{ dbt.date_trunc('week', utc_to_local('with_campaign.started_at_utc', 'sites.time_zone')) }} as date) as week_start
    from with_campaign
    left join sites
        on with_campaign.site = sites.site

)

select * from final

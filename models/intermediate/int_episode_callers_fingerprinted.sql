-- One row per caller number with episodes: a fingerprint of everything the rest of the episode
-- chain reads about that caller besides its own calls (macros/incremental.sql, "The rest of
-- the episode chain per caller number"):
-- - its CRM identity (int_caller_identities_resolved), and of that identity: the earliest
--   creation of a customer contact and the earliest close of a won opportunity (intent rule 6
--   asks whether either came by the miss), the survivor contact's owner (the episode's owner
--   when no queue owner), and its opportunities created up to the as-of time, each by id,
--   creation, amount, won and closed (the conversions, and the values the revenue at risk
--   reads from them);
-- - its sales forms' submission times (intent rule 3);
-- - its CRM-only callback attempts (time after the clock-skew correction, connected or not):
--   the PBX ones are calls, and a touched call's numbers are recomputed anyway;
-- - the global inputs: whether any opportunity is loaded (`converted` is null without any) and
--   each site calendar's start (an earlier leg moves it, and every cumulative open time).
-- Incremental on DuckDB: a build keeps the stored row of every number whose fingerprint is
-- unchanged and replaces the others, marked with the ledger's highest load_seq (so the numbers
-- changed since the watermark are those with load_seq above it, and stay so until a build
-- completes); numbers without episodes any more are deleted. Rules, thresholds and the site
-- calendar's hours are seeds and vars: a change of those is a full refresh
-- (orchestration/incremental.py), as is a change of tracking numbers. A 64-bit hash: two
-- different inputs giving one fingerprint is possible in principle (~1 in 10^19 a change).
{{ config(
    materialized=ringledger.per_call_materialization(),
    incremental_strategy=ringledger.incremental_strategy('replace_keys'),
    unique_key='caller_number_e164',
    on_schema_change='fail',
    pre_hook="{% if is_incremental() %}delete from {{ this }} as stored where not exists (select 1 from {{ ref('int_missed_call_episodes_collapsed') }} as episodes where episodes.caller_number_e164 = stored.caller_number_e164){% endif %}"
) }}
with callers as (

    select distinct caller_number_e164
    from {{ ref('int_missed_call_episodes_collapsed') }}
    where caller_number_e164 is not null

),

caller_identities as (

    select caller_number_e164, identity_id from {{ ref('int_caller_identities_resolved') }}

),

contacts as (

    select contact_id, identity_id, is_survivor, lifecycle, created_at_utc, owner
    from {{ ref('int_crm_contacts_identified') }}

),

opportunities as (

    select opportunity_id, contact_id, created_at_utc, closed_at_utc, amount, is_won, is_closed
    from {{ ref('int_crm_opportunities_deduplicated') }}

),

identity_contacts as (

    select
        identity_id,
        min(case when lifecycle = 'customer' then created_at_utc end) as first_customer_created_at_utc,
        max(case when is_survivor then owner end) as survivor_owner
    from contacts
    group by identity_id

),

identity_opportunities as (

    select
        contacts.identity_id,
        min(case when opportunities.is_won then opportunities.closed_at_utc end) as first_won_closed_at_utc,
        count(case when opportunities.created_at_utc <= as_of.as_of_utc then 1 end) as opportunities_to_as_of,
        {{ ringledger.set_hash([
            "case when opportunities.created_at_utc <= as_of.as_of_utc then opportunities.opportunity_id end",
            "case when opportunities.created_at_utc <= as_of.as_of_utc then opportunities.created_at_utc end",
            "case when opportunities.created_at_utc <= as_of.as_of_utc then opportunities.amount end",
            "case when opportunities.created_at_utc <= as_of.as_of_utc then opportunities.is_won end",
            "case when opportunities.created_at_utc <= as_of.as_of_utc then opportunities.is_closed end",
        ]) }} as opportunities_hash
    from opportunities
    inner join contacts
        on opportunities.contact_id = contacts.contact_id
    cross join (select {{ as_of_utc() }} as as_of_utc) as as_of
    group by contacts.identity_id

),

forms as (

    select
        phone_e164 as caller_number_e164,
        count(*) as forms,
        {{ ringledger.set_hash(['submitted_at_utc']) }} as forms_hash
    from {{ ref('int_crm_form_submissions_deduplicated') }}
    where form_type in {{ sales_form_types() }}
        and phone_e164 is not null
        and submitted_at_utc is not null
    group by phone_e164

),

crm_attempts as (

    select
        caller_number_e164,
        count(*) as attempts,
        {{ ringledger.set_hash(['attempted_at_utc', 'is_connected']) }} as attempts_hash
    from {{ ref('int_callback_attempts_unioned') }}
    where attempt_source = 'crm'
    group by caller_number_e164

),

global_inputs as (

    select
        (select count(*) from {{ ref('int_crm_opportunities_deduplicated') }}) > 0 as has_opportunities,
        (
            select {{ ringledger.set_hash(['site', 'calendar_starts_at_utc']) }}
            from (
                select site, min(segment_start_utc) as calendar_starts_at_utc
                from {{ ref('stg_calendar__site_segments') }}
                group by site
            ) as site_starts
        ) as calendars_hash

),

fingerprinted as (

    select
        callers.caller_number_e164,
        {{ ringledger.row_hash([
            'caller_identities.identity_id',
            'identity_contacts.first_customer_created_at_utc',
            'identity_contacts.survivor_owner',
            'identity_opportunities.first_won_closed_at_utc',
            'identity_opportunities.opportunities_to_as_of',
            'identity_opportunities.opportunities_hash',
            'forms.forms',
            'forms.forms_hash',
            'crm_attempts.attempts',
            'crm_attempts.attempts_hash',
            'global_inputs.has_opportunities',
            'global_inputs.calendars_hash',
        ]) }} as fingerprint
    from callers
    cross join global_inputs
    left join caller_identities
        on callers.caller_number_e164 = caller_identities.caller_number_e164
    left join identity_contacts
        on caller_identities.identity_id = identity_contacts.identity_id
    left join identity_opportunities
        on caller_identities.identity_id = identity_opportunities.identity_id
    left join forms
        on callers.caller_number_e164 = forms.caller_number_e164
    left join crm_attempts
        on callers.caller_number_e164 = crm_attempts.caller_number_e164

),

final as (

    select
        fingerprinted.caller_number_e164,
        fingerprinted.fingerprint,
        {{ ringledger.current_load_seq() }} as load_seq
    from fingerprinted
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as stored
        where stored.caller_number_e164 = fingerprinted.caller_number_e164
            and stored.fingerprint = fingerprinted.fingerprint
    )
    {% endif %}

)

select * from final

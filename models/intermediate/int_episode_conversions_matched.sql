-- Opportunities that convert episodes (metrics.md section 6): an opportunity of the caller's
-- CRM identity (as merged now) created after the first miss (the instant excluded) and within
-- conversion_window_days of it, up to the as-of time. One opportunity can convert several
-- episodes; one row per (episode, opportunity).
-- Incremental on DuckDB, per caller number like the episodes it reads
-- (int_missed_call_episodes_scoped: macros/incremental.sql, "The rest of the episode chain per
-- caller number"): a build after new loads replaces the rows of the scoped episodes and
-- deletes those of the episodes no longer collapsed; the callers' fingerprints cover the
-- identities, contacts and opportunities (up to the as-of time) read here.
-- depends_on: {{ ref('int_missed_call_episodes_collapsed') }}
{{ ringledger.replaced_rows_config("{{ ringledger.delete_scoped_episodes() }}") }}
with episodes as (

    select episode_id, caller_number_e164, first_missed_at_utc
    from {{ ref('int_missed_call_episodes_scoped') }}
    where caller_number_e164 is not null

),

caller_identities as (

    select caller_number_e164, identity_id from {{ ref('int_caller_identities_resolved') }}

),

contacts as (

    select contact_id, identity_id from {{ ref('int_crm_contacts_identified') }}

),

opportunities as (

    select
        opportunity_id,
        contact_id,
        created_at_utc,
        amount,
        is_won,
        is_closed
    from {{ ref('int_crm_opportunities_deduplicated') }}
    where created_at_utc is not null
        and created_at_utc <= {{ as_of_utc() }}

),

final as (

    select
        episodes.episode_id,
        opportunities.opportunity_id,
        opportunities.created_at_utc as opportunity_created_at_utc,
        opportunities.amount,
        coalesce(opportunities.is_won, false) as is_won,
        coalesce(opportunities.is_closed, false) or coalesce(opportunities.is_won, false) as is_closed
    from episodes
    inner join caller_identities
        on episodes.caller_number_e164 = caller_identities.caller_number_e164
    inner join contacts
        on caller_identities.identity_id = contacts.identity_id
    inner join opportunities
        on contacts.contact_id = opportunities.contact_id
        and opportunities.created_at_utc > episodes.first_missed_at_utc
        and opportunities.created_at_utc <= {{ add_seconds('episodes.first_missed_at_utc', '86400.0 * ' ~ var('conversion_window_days')) }}

)

select * from final

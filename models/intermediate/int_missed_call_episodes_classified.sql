-- One intent per episode (metrics.md section 3), from its first miss; the first rule that
-- matches decides and intent_rule records it:
--   1 blocklisted or wrong-number first miss -> wrong_or_spam
--   2 IVR selection mapped in ivr_intents (trimmed)
--   3 a quote/pricing/demo/contact_sales form from the caller's number in the
--     form_intent_lookback_days before the miss (the instant of the miss excluded) -> high_intent
--   4 the dialed tracking number's campaign default_intent at call time (empty falls through)
--   5 the queue mapped in queue_intents (trimmed, case-insensitive)
--   6 an existing customer at the miss (a customer contact of the caller's identity created by
--     then, or an opportunity of the identity won by then) -> service
--   7 informational
-- A view: read once, by the next model of the episode chain (classified -> recovered -> timed ->
-- int_missed_call_episodes_enriched, the table), so the chain is not written three times; the
-- stored mart's unique test and not_null constraint on episode_id cover its grain
-- (docs/benchmarks.md).
{{ config(materialized='view') }}
with episodes as (

    select * from {{ ref('int_missed_call_episodes_scoped') }}

),

-- the three columns the form and identity lookups read, from the same table: `episodes`
-- then has one reader (signals) and streams, instead of being materialized whole for three
-- (DuckDB materializes a CTE read more than once: the wide rows cost ~0.4 s at a year)
episode_callers as (

    select episode_id, caller_number_e164, first_missed_at_utc
    from {{ ref('int_missed_call_episodes_scoped') }}

),

ivr_intents as (

    select trim(ivr_selection) as ivr_selection, min({{ normalize_label('intent') }}) as intent
    from {{ ref('ivr_intents') }}
    group by trim(ivr_selection)

),

queue_intents as (

    select lower(trim(queue)) as queue, min({{ normalize_label('intent') }}) as intent
    from {{ ref('queue_intents') }}
    group by lower(trim(queue))

),

forms as (

    select phone_e164, submitted_at_utc
    from {{ ref('int_crm_form_submissions_deduplicated') }}
    where form_type in {{ sales_form_types() }}
        and phone_e164 is not null
        and submitted_at_utc is not null

),

caller_identities as (

    select caller_number_e164, identity_id from {{ ref('int_caller_identities_resolved') }}

),

contacts as (

    select contact_id, identity_id, created_at_utc, lifecycle
    from {{ ref('int_crm_contacts_identified') }}

),

opportunities as (

    select contact_id, is_won, closed_at_utc
    from {{ ref('int_crm_opportunities_deduplicated') }}

),

form_hits as (

    select distinct episodes.episode_id
    from episode_callers as episodes
    inner join forms
        on episodes.caller_number_e164 = forms.phone_e164
        and forms.submitted_at_utc < episodes.first_missed_at_utc
        and forms.submitted_at_utc >= {{ add_seconds('episodes.first_missed_at_utc', '-86400.0 * ' ~ var('form_intent_lookback_days')) }}

),

episode_identities as (

    select episodes.episode_id, episodes.first_missed_at_utc, caller_identities.identity_id
    from episode_callers as episodes
    inner join caller_identities
        on episodes.caller_number_e164 = caller_identities.caller_number_e164

),

customer_contacts as (

    select distinct episode_identities.episode_id
    from episode_identities
    inner join contacts
        on episode_identities.identity_id = contacts.identity_id
    where contacts.lifecycle = 'customer'
        and contacts.created_at_utc <= episode_identities.first_missed_at_utc

),

customer_wins as (

    select distinct episode_identities.episode_id
    from episode_identities
    inner join contacts
        on episode_identities.identity_id = contacts.identity_id
    inner join opportunities
        on contacts.contact_id = opportunities.contact_id
    where opportunities.is_won
        and opportunities.closed_at_utc <= episode_identities.first_missed_at_utc

),

customers as (

    select episode_id from customer_contacts
    union
    select episode_id from customer_wins

),

signals as (

    select
        episodes.*,
        ivr_intents.intent as ivr_intent,
        form_hits.episode_id is not null as has_recent_sales_form,
        case
            when episodes.campaign_default_intent in ('high_intent', 'service', 'informational', 'wrong_or_spam')
                then episodes.campaign_default_intent
        end as campaign_intent,
        queue_intents.intent as queue_intent,
        customers.episode_id is not null as is_existing_customer
    from episodes
    left join ivr_intents
        on trim(episodes.ivr_selection) = ivr_intents.ivr_selection
    left join queue_intents
        on lower(trim(episodes.queue)) = queue_intents.queue
    left join form_hits
        on episodes.episode_id = form_hits.episode_id
    left join customers
        on episodes.episode_id = customers.episode_id

),

final as (

    select
        signals.*,
        case
            when coalesce(is_blocklisted, false) or coalesce(is_wrong_number, false) then 'wrong_or_spam'
            when ivr_intent is not null then ivr_intent
            when has_recent_sales_form then 'high_intent'
            when campaign_intent is not null then campaign_intent
            when queue_intent is not null then queue_intent
            when is_existing_customer then 'service'
            else 'informational'
        end as intent,
        case
            when coalesce(is_blocklisted, false) or coalesce(is_wrong_number, false) then 1
            when ivr_intent is not null then 2
            when has_recent_sales_form then 3
            when campaign_intent is not null then 4
            when queue_intent is not null then 5
            when is_existing_customer then 6
            else 7
        end as intent_rule
    from signals

)

select * from final

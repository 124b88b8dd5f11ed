-- The episode chain's rows, stored (macros/incremental.sql, "The rest of the episode chain per
-- caller number"): each episode of int_missed_call_episodes_timed with its owner and
-- conversions, without the columns that depend on the as-of time (the site's clock at the as-of,
-- minutes_to_sla, sla_status): the marts.fct_missed_call_episodes view computes those on read
-- for the current build's as-of time, from the SLA target and due time stored here (and in
-- marts.fct_missed_call_episodes_stored).
-- Incremental on DuckDB: a build after new loads recomputes the episodes of
-- int_missed_call_episodes_scoped and appends those whose row changed (a new episode, or a
-- row_hash other than the stored row's: ~11% of the recomputed episodes on the year's day),
-- marked with the ledger's highest load_seq (the mart rewrites the rows above the watermark);
-- a post-hook deletes the rows they replace, the pre-hook those of the episodes no longer
-- collapsed; every other episode keeps its row. Then the scoped view is every collapsed
-- episode again (reset_episode_scope).
-- depends_on: {{ ref('int_callers_touched') }}
-- depends_on: {{ ref('int_episode_callers_fingerprinted') }}
-- depends_on: {{ ref('int_missed_call_episodes_scoped') }}
-- depends_on: {{ ref('int_missed_call_episodes_collapsed') }}
{{ ringledger.replaced_rows_config(
    "{{ ringledger.delete_scoped_episodes(scoped=false) }}",
    ["{{ ringledger.drop_replaced_rows('episode_id') }}", "{{ ringledger.reset_episode_scope() }}"]
) }}
with episodes as (

    select * from {{ ref('int_missed_call_episodes_timed') }}

),

conversions as (

    select episode_id, count(distinct opportunity_id) as conversions
    from {{ ref('int_episode_conversions_matched') }}
    group by episode_id

),

opportunities_loaded as (

    select count(*) as opportunities from {{ ref('int_crm_opportunities_deduplicated') }}

),

queue_owners as (

    select lower(trim(queue)) as queue, min(nullif(trim(owner), '')) as owner
    from {{ ref('queue_owners') }}
    group by lower(trim(queue))

),

caller_identities as (

    select caller_number_e164, identity_id from {{ ref('int_caller_identities_resolved') }}

),

survivor_owners as (

    select contact_id as identity_id, owner from {{ ref('int_crm_contacts_identified') }}
    where is_survivor

),

chain as (

    select
        episodes.episode_id,
        episodes.first_call_key,
        episodes.source_system,
        episodes.caller_number_e164,
        episodes.caller_key,
        episodes.site,
        episodes.site_time_zone,
        episodes.queue,
        episodes.ivr_selection,
        episodes.tracking_number,
        episodes.campaign,
        episodes.source,
        episodes.channel,
        episodes.campaign_default_intent,
        episodes.is_noise,
        episodes.noise_reason,
        episodes.is_blocklisted,
        episodes.is_wrong_number,
        episodes.first_missed_at_utc,
        episodes.last_missed_at_utc,
        episodes.missed_attempts,
        episodes.week_start,
        episodes.ivr_intent,
        episodes.has_recent_sales_form,
        episodes.campaign_intent,
        episodes.queue_intent,
        episodes.is_existing_customer,
        episodes.intent,
        episodes.intent_rule,
        episodes.horizon_ends_at_utc,
        episodes.callback_attempts,
        episodes.connected_callbacks,
        episodes.first_attempt_at_utc,
        episodes.first_connected_callback_at_utc,
        episodes.first_inbound_recovery_at_utc,
        episodes.recovered_by,
        episodes.has_connected_callback,
        episodes.first_contact_at_utc,
        episodes.attempt_delay_minutes,
        episodes.contact_delay_minutes,
        episodes.is_business_hours,
        episodes.attempt_delay_business_minutes,
        episodes.contact_delay_business_minutes,
        episodes.sla_business_minutes,
        episodes.sla_target_cumulative_seconds,
        episodes.sla_due_at_utc,
        episodes.is_contacted_within_sla,
        episodes.delay_bucket,
        episodes.delay_bucket_sort_order,
        coalesce(queue_owners.owner, survivor_owners.owner, 'unassigned') as owner,
        case
            when opportunities_loaded.opportunities = 0 then cast(null as boolean)
            else coalesce(conversions.conversions, 0) > 0
        end as converted,
        case
            when opportunities_loaded.opportunities = 0 then cast(null as integer)
            else cast(coalesce(conversions.conversions, 0) as integer)
        end as converting_opportunities
    from episodes
    cross join opportunities_loaded
    left join conversions
        on episodes.episode_id = conversions.episode_id
    left join queue_owners
        on lower(trim(episodes.queue)) = queue_owners.queue
    left join caller_identities
        on episodes.caller_number_e164 = caller_identities.caller_number_e164
    left join survivor_owners
        on caller_identities.identity_id = survivor_owners.identity_id

),

-- the row's hash (every column above) tells a changed row from an unchanged one (changed_rows)
final as (

    select
        chain.*,
        {{ ringledger.row_hash([ringledger.whole_row('chain')]) }} as row_hash,
        {{ ringledger.current_load_seq() }} as load_seq
    from chain

)

{{ ringledger.changed_rows('final', 'episode_id') }}

-- CRM activities linked to the logical PBX calls they reference: `pbx_call_id` links to every
-- leg whose call id or parent id equals it (inputs-and-outputs.md, activities), and through
-- the leg to its logical call. One row per (activity, logical call).
-- Incremental on DuckDB (macros/incremental.sql): a build after new loads recomputes the links
-- of the activities in int_crm_activities_touched and keeps the others'.
-- depends_on: {{ ref('int_crm_activities_touched') }}
{{ ringledger.touched_records_config('activity_id', 'int_crm_activities_touched') }}
with activities as (

    select
        activity_id,
        pbx_call_id,
        activity_type,
        disposition,
        logged_at_utc
    from {{ ref('int_crm_activities_deduplicated') }}
    where pbx_call_id is not null
        and {{ ringledger.in_touched_records('activity_id', 'int_crm_activities_touched') }}

),

-- on an incremental build, the legs and calls of the touched activities are read once, by a
-- scan of their key columns (touched_rows)
{{ ringledger.touched_rows_cte('named_legs', ref('int_legs_deduplicated'),
    'call_id in (select pbx_call_id from activities) or parent_call_id in (select pbx_call_id from activities)') }}

legs as (

    select
        source_system,
        call_id,
        parent_call_id,
        coalesce(parent_call_id, call_id) as call_id_root
    from {{ ringledger.touched_rows('named_legs', ref('int_legs_deduplicated')) }}

),

leg_matches as (

    select activities.activity_id, legs.source_system, legs.call_id_root
    from activities
    inner join legs
        on activities.pbx_call_id = legs.call_id

    union

    select activities.activity_id, legs.source_system, legs.call_id_root
    from activities
    inner join legs
        on activities.pbx_call_id = legs.parent_call_id

),

{{ ringledger.touched_rows_cte('linked_calls', ref('int_calls'), 'call_id in (select call_id_root from leg_matches)') }}

calls as (

    select call_key, source_system, call_id, started_at_utc
    from {{ ringledger.touched_rows('linked_calls', ref('int_calls')) }}

),

final as (

    select
        activities.activity_id,
        activities.activity_type,
        activities.disposition,
        activities.logged_at_utc,
        calls.call_key,
        calls.source_system,
        calls.started_at_utc as call_started_at_utc
    from leg_matches
    inner join activities
        on leg_matches.activity_id = activities.activity_id
    inner join calls
        on leg_matches.source_system = calls.source_system
        and leg_matches.call_id_root = calls.call_id

)

select * from final

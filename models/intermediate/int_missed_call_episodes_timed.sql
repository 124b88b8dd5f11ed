-- Business-hours clock, SLA and delay bucket of each episode (metrics.md section 4).
-- The site calendar (stg_calendar__site_segments) gives the cumulative open seconds at any
-- instant t: open_seconds_before of the segment containing t, plus t - segment start when that
-- segment is open. Business minutes between two instants are the difference of the two
-- cumulative values / 60 (a miss after hours starts counting when the site opens). The SLA due
-- time is the instant where the cumulative reaches cumulative(first miss) + SLA minutes * 60;
-- `met` when an attempt or an inbound recovery came at or before it, `breached` when none did
-- and the as-of time is after it, `open` otherwise; `none` for noise and intents without SLA.
-- A view: read once, by the next model of the episode chain (classified -> recovered -> timed ->
-- int_missed_call_episodes_enriched, the table), so the chain is not written three times; the
-- stored mart's unique test and not_null constraint on episode_id cover its grain
-- (docs/benchmarks.md).
{{ config(materialized='view') }}
with episodes as (

    select * from {{ ref('int_missed_call_episodes_recovered') }}

),

segments as (

    select * from {{ ref('stg_calendar__site_segments') }}

),

slas as (

    select {{ normalize_label('intent') }} as intent, max(sla_business_minutes) as sla_business_minutes
    from {{ ref('callback_slas') }}
    group by {{ normalize_label('intent') }}

),

buckets as (

    select delay_bucket, lower_minutes, upper_minutes, sort_order from {{ ref('delay_buckets') }}

),

as_of as (

    select {{ as_of_utc() }} as as_of_utc

),

-- the cumulative open time at the as-of instant depends on the site only: one row a site
-- (a range lookup over that site's segments), not one instant per episode
site_as_of as (

    {{ site_cumulative_at_as_of('segments', 'as_of') }}

),

-- the segment containing each of an episode's instants (first miss, first attempt, first
-- contact): a site's segments are contiguous and do not overlap (orchestration/calendar.py;
-- tests/dbt/assert_site_segments_do_not_overlap.sql), so exactly one segment has
-- start <= instant < end. Each segment is listed once per UTC day number it touches (a day or a
-- few: nights, weekends, holidays) and an instant is joined to its day's few segments by
-- equality, then the range kept: one left join per instant, so an episode keeps one row and
-- a missing instant (no attempt, no contact) finds no segment. Performance: a running max over
-- one time line of segment starts and instants per site (2-3 partitions: one sort of 3.6 M
-- rows) took 2.5 s at a year's episodes, the range join before that compared every instant
-- with every segment of its site; the three instants as rows of one join, pivoted back to one
-- row per episode by an aggregate, took ~1.5 s more than these joins (docs/benchmarks.md).
{%- set epoch = "cast('1970-01-01 00:00:00' as " ~ dbt.type_timestamp() ~ ")" %}
{%- set day_seconds = 86400.0 %}
{%- set instants = [
    ('at_miss', 'episodes.first_missed_at_utc'),
    ('at_attempt', 'episodes.first_attempt_at_utc'),
    ('at_contact', 'episodes.first_contact_at_utc'),
] %}
segment_days as (

    select
        site,
        segment_start_utc,
        segment_end_utc,
        is_open,
        open_seconds_before,
        {{ explode_range(
            'cast(floor(' ~ seconds_between(epoch, 'segment_start_utc') ~ ' / ' ~ day_seconds ~ ') as bigint)',
            'cast(floor(' ~ seconds_between(epoch, 'segment_end_utc') ~ ' / ' ~ day_seconds ~ ') as bigint)'
        ) }} as day_number
    from segments

),

-- the columns derived here are computed on narrow rows (episode_id and what each step reads) and
-- joined to the wide episode row once, in `final`: each CTE read twice is materialized, and
-- carrying every episode column through them made the query spill at a year's episodes
with_sla as (

    select
        episodes.episode_id,
        episodes.site,
        episodes.first_missed_at_utc,
        episodes.first_attempt_at_utc,
        episodes.first_inbound_recovery_at_utc,
        episodes.first_contact_at_utc,
        episodes.contact_delay_minutes,
        coalesce(at_miss.is_open, false) as is_business_hours,
        ({{ cumulative_open_seconds('at_attempt', 'episodes.first_attempt_at_utc') }}
            - ({{ cumulative_open_seconds('at_miss', 'episodes.first_missed_at_utc') }})) / 60.0 as attempt_delay_business_minutes,
        ({{ cumulative_open_seconds('at_contact', 'episodes.first_contact_at_utc') }}
            - ({{ cumulative_open_seconds('at_miss', 'episodes.first_missed_at_utc') }})) / 60.0 as contact_delay_business_minutes,
        case when not episodes.is_noise then slas.sla_business_minutes end as sla_business_minutes,
        case
            when not episodes.is_noise and slas.sla_business_minutes is not null
                then {{ cumulative_open_seconds('at_miss', 'episodes.first_missed_at_utc') }} + slas.sla_business_minutes * 60.0
        end as sla_target_cumulative_seconds,
        site_as_of.cumulative_at_as_of
    from episodes
    {%- for alias, instant in instants %}
    left join segment_days as {{ alias }}
        on episodes.site = {{ alias }}.site
        and cast(floor({{ seconds_between(epoch, instant) }} / {{ day_seconds }}) as bigint) = {{ alias }}.day_number
        and {{ alias }}.segment_start_utc <= {{ instant }}
        and {{ instant }} < {{ alias }}.segment_end_utc
    {%- endfor %}
    left join slas
        on episodes.intent = slas.intent
    left join site_as_of
        on episodes.site = site_as_of.site

),

-- the open segment in which each SLA target (a cumulative open time) falls: the open segment
-- with open_seconds_before < target <= open_seconds_before + segment_seconds (a target equal
-- to a segment's open_seconds_before falls in the open segment before it). The open segments'
-- ranges of cumulative open time follow each other without overlap, so at most one holds it.
-- Joined like the instants above: each open segment listed once per day number of cumulative open time
-- (open_seconds_before / 86400) it touches, a target joined to its day number's segments.
-- Performance: a running max over one line of open segments and targets per site took 1.3 s;
-- the range join before it compared every target with every open segment of its site.
open_segment_days as (

    select
        site,
        segment_start_utc,
        open_seconds_before,
        segment_seconds,
        {{ explode_range(
            'cast(floor(open_seconds_before / ' ~ day_seconds ~ ') as bigint)',
            'cast(floor((open_seconds_before + segment_seconds) / ' ~ day_seconds ~ ') as bigint)'
        ) }} as open_day_number
    from segments
    where is_open

),

-- each episode's SLA due time: a left join, one row per episode, since at most one open
-- segment holds a target (a grouping per episode took ~0.6 s more at a year's episodes, and
-- with_sla, then read once, streams instead of being materialized); none when no open segment
-- holds it (the target before the site's first opening or after its calendar's end)
due_times as (

    select
        with_sla.*,
        case
            when open_segment_days.site is null then null
            when with_sla.sla_business_minutes <= 0 then with_sla.first_missed_at_utc
            else {{ add_seconds('open_segment_days.segment_start_utc', 'with_sla.sla_target_cumulative_seconds - open_segment_days.open_seconds_before') }}
        end as sla_due_at_utc
    from with_sla
    left join open_segment_days
        on with_sla.site = open_segment_days.site
        and cast(floor(with_sla.sla_target_cumulative_seconds / {{ day_seconds }}) as bigint) = open_segment_days.open_day_number
        and open_segment_days.open_seconds_before < with_sla.sla_target_cumulative_seconds
        and with_sla.sla_target_cumulative_seconds <= open_segment_days.open_seconds_before + open_segment_days.segment_seconds

),

statused as (

    select
        due_times.episode_id,
        due_times.is_business_hours,
        due_times.attempt_delay_business_minutes,
        due_times.contact_delay_business_minutes,
        due_times.sla_business_minutes,
        due_times.sla_target_cumulative_seconds,
        due_times.cumulative_at_as_of,
        due_times.contact_delay_minutes,
        due_times.sla_due_at_utc,
        {{ minutes_to_sla('due_times.sla_target_cumulative_seconds', 'due_times.cumulative_at_as_of') }} as minutes_to_sla,
        {{ sla_status(
            'due_times.sla_business_minutes',
            'due_times.sla_due_at_utc',
            'due_times.first_attempt_at_utc',
            'due_times.first_inbound_recovery_at_utc',
            'as_of.as_of_utc'
        ) }} as sla_status,
        (
            due_times.first_contact_at_utc is not null
            and due_times.sla_due_at_utc is not null
            and due_times.first_contact_at_utc <= due_times.sla_due_at_utc
        ) as is_contacted_within_sla
    from due_times
    cross join as_of

),

-- the buckets in the order that decides between overlapping ones: sort_order, then name
ranked_buckets as (

    select
        delay_bucket,
        lower_minutes,
        upper_minutes,
        sort_order,
        row_number() over (
            order by sort_order asc nulls last, delay_bucket asc nulls last
        ) as bucket_rank
    from buckets

),

-- each episode's first matching bucket: the least rank among the buckets its delay falls in
-- (an aggregate per episode; a row_number() partitioned by episode sorted every match: 2.2 s)
bucketed as (

    select
        statused.episode_id,
        min(ranked_buckets.bucket_rank) as bucket_rank
    from statused
    inner join ranked_buckets
        on (
            statused.contact_delay_minutes is not null
            and ranked_buckets.lower_minutes is not null
            and statused.contact_delay_minutes >= ranked_buckets.lower_minutes
            and (ranked_buckets.upper_minutes is null or statused.contact_delay_minutes < ranked_buckets.upper_minutes)
        )
        or (
            statused.contact_delay_minutes is null
            and ranked_buckets.lower_minutes is null
            and ranked_buckets.upper_minutes is null
        )
    group by statused.episode_id

),

final as (

    select
        episodes.*,
        statused.is_business_hours,
        statused.attempt_delay_business_minutes,
        statused.contact_delay_business_minutes,
        statused.sla_business_minutes,
        statused.sla_target_cumulative_seconds,
        statused.cumulative_at_as_of,
        statused.sla_due_at_utc,
        statused.minutes_to_sla,
        statused.sla_status,
        statused.is_contacted_within_sla,
        ranked_buckets.delay_bucket,
        ranked_buckets.sort_order as delay_bucket_sort_order
    from episodes
    inner join statused
        on episodes.episode_id = statused.episode_id
    left join bucketed
        on statused.episode_id = bucketed.episode_id
    left join ranked_buckets
        on bucketed.bucket_rank = ranked_buckets.bucket_rank

)

select * from final

-- A site's calendar segments never overlap (orchestration/calendar.py builds them contiguous):
-- int_missed_call_episodes_timed takes the segment containing an instant to be the latest one
-- starting at or before it, which holds only then. Rows returned: a segment ending before it
-- starts, or after the site's next segment starts.
with segments as (

    select
        site,
        segment_start_utc,
        segment_end_utc,
        lead(segment_start_utc) over (
            partition by site
            order by segment_start_utc asc nulls last
        ) as next_segment_start_utc
    from {{ ref('stg_calendar__site_segments') }}

)

select *
from segments
where segment_end_utc < segment_start_utc
    or segment_end_utc > next_segment_start_utc

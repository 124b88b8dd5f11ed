{#-
  Cumulative open (business) seconds of a site's calendar at `instant`, given the calendar
  segment containing it (`segment`: a relation alias of stg_calendar__site_segments):
  open_seconds_before of the segment, plus the time since its start when it is open
  (int_missed_call_episodes_timed; metrics.md section 4). Portable SQL.
-#}
{% macro cumulative_open_seconds(segment, instant) -%}
    {{ segment }}.open_seconds_before
            + case
                when {{ segment }}.is_open then {{ seconds_between(segment ~ '.segment_start_utc', instant) }}
                else 0.0
            end
{%- endmacro %}

{#-
  The as-of rules of an episode's SLA (metrics.md section 4), shared by
  int_missed_call_episodes_timed and the marts.fct_missed_call_episodes view (which computes them
  on read for the current build's as-of time, marts.dim_as_of_clocks, on the stored episodes):
  `none` without an SLA; `open` without a due time (the target is beyond the calendar); `met`
  when an attempt or an inbound recovery came at or before the due time; `breached` when none
  did and the as-of time is after it; `open` otherwise. The business minutes left to the SLA
  are the target's cumulative open seconds less the site's at the as-of time, over 60
  (negative when overdue).
-#}
{% macro sla_status(sla_business_minutes, sla_due_at, first_attempt_at, first_inbound_recovery_at, as_of) -%}
    case
            when {{ sla_business_minutes }} is null then 'none'
            when {{ sla_due_at }} is null then 'open'
            when {{ first_attempt_at }} <= {{ sla_due_at }} then 'met'
            when {{ first_inbound_recovery_at }} <= {{ sla_due_at }} then 'met'
            when {{ as_of }} > {{ sla_due_at }} then 'breached'
            else 'open'
        end
{%- endmacro %}

{% macro minutes_to_sla(target_cumulative_seconds, cumulative_at_as_of) -%}
    case
        when {{ target_cumulative_seconds }} is not null and {{ cumulative_at_as_of }} is not null
            then ({{ target_cumulative_seconds }} - {{ cumulative_at_as_of }}) / 60.0
    end
{%- endmacro %}

{#- Each site's cumulative open seconds at the as-of time (one row a site: a range lookup over
    its segments in `segments`, a relation of stg_calendar__site_segments' columns, and
    `as_of`, a one-row relation with column as_of_utc). A select, for a CTE. -#}
{% macro site_cumulative_at_as_of(segments, as_of) -%}
    select
        {{ segments }}.site,
        {{ cumulative_open_seconds(segments, as_of ~ '.as_of_utc') }} as cumulative_at_as_of
    from {{ segments }}
    cross join {{ as_of }}
    where {{ segments }}.segment_start_utc <= {{ as_of }}.as_of_utc
        and {{ as_of }}.as_of_utc < {{ segments }}.segment_end_utc
{%- endmacro %}

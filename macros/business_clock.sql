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

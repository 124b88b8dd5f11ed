-- The collapsed episodes the rest of the episode chain recomputes on this build (macros/
-- incremental.sql, scoped_episodes), written once: on an incremental build
-- int_missed_call_episodes_scoped reads them from here, so that its readers (the classified
-- view twice and the recovered view, read by int_missed_call_episodes_enriched, and
-- int_episode_conversions_matched with its pre-hook) do not each scan the year's ~1.5 M
-- collapsed episodes and evaluate the scope again (~18 k rows on the year's day). Empty on a
-- full build and on Spark, where the scoped view reads every collapsed episode itself.
-- depends_on: {{ ref('int_callers_touched') }}
-- depends_on: {{ ref('int_calls_touched') }}
-- depends_on: {{ ref('int_episode_callers_fingerprinted') }}
{{ config(materialized='table') }}
{% if ringledger.incremental_build() -%}
{{ ringledger.scoped_episodes(ref('int_missed_call_episodes_collapsed')) }}
{%- else -%}
select * from {{ ref('int_missed_call_episodes_collapsed') }} where 1 = 0
{%- endif %}

-- The collapsed episodes the rest of the episode chain computes on this build (macros/
-- incremental.sql, scoped_episodes): every episode on a full build; on an incremental one,
-- the episodes of the caller numbers int_callers_touched lists that a call from the number's
-- recompute_from_utc on can change (the last miss within the repeat-dial window before it or
-- later, or the callback horizon reaching it), every episode of the numbers whose fingerprint
-- (int_episode_callers_fingerprinted) changed since the watermark, and the number-less ones of
-- the recomputed calls (all of them when every fingerprint changed), as
-- int_missed_call_episodes_selected stored them for this build. A view, compiled again by
-- every build; once the enriched episodes are built, a post-hook makes it every collapsed
-- episode again (reset_episode_scope).
-- depends_on: {{ ref('int_missed_call_episodes_selected') }}
-- depends_on: {{ ref('int_missed_call_episodes_collapsed') }}
{{ config(materialized='view') }}
with episodes as (

    {% if ringledger.incremental_build() -%}
    select * from {{ ref('int_missed_call_episodes_selected') }}
    {%- else -%}
    select * from {{ ref('int_missed_call_episodes_collapsed') }}
    {%- endif %}

)

select * from episodes

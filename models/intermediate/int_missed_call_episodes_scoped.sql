-- The collapsed episodes the rest of the episode chain computes on this build (macros/
-- incremental.sql, "The rest of the episode chain per caller number"): every episode on a full
-- build; on an incremental one, the episodes of the caller numbers int_callers_touched lists or
-- whose fingerprint (int_episode_callers_fingerprinted) changed since the watermark, and the
-- number-less ones of the recomputed calls (all of them when every fingerprint changed:
-- macros/incremental.sql, in_episode_scope). A view, compiled again by every build with its
-- condition.
-- depends_on: {{ ref('int_callers_touched') }}
-- depends_on: {{ ref('int_calls_touched') }}
-- depends_on: {{ ref('int_episode_callers_fingerprinted') }}
{{ config(materialized='view') }}
with episodes as (

    select collapsed.* from {{ ref('int_missed_call_episodes_collapsed') }} as collapsed
    where {{ ringledger.in_episode_scope('collapsed') }}

)

select * from episodes

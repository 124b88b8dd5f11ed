{#-
  The answered inbound calls of the caller numbers a per-caller model recomputes (every
  number on a full build): an inbound call of the caller, to any site, answered by a person
  (metrics.md sections 2 and 4). Read by int_missed_call_episodes_collapsed (an answered call
  closes an episode) and int_episode_inbound_recoveries (the first one after an episode
  recovers it). A model using it declares `-- depends_on: {{ ref('int_callers_touched') }}`.
-#}
{% macro touched_answered_inbound_calls() -%}
    select caller_number_e164, started_at_utc
    from {{ ref('int_calls_classified') }}
    where is_inbound
        and is_answered
        and caller_number_e164 is not null
        and {{ ringledger.in_touched_callers('caller_number_e164') }}
{%- endmacro %}

{#- The end of an episode's callback horizon (metrics.md section 4): its first miss plus
    callback_horizon_days; an attempt or inbound recovery counts up to and including it. -#}
{% macro horizon_ends_at(first_missed_at) -%}
    {{ add_seconds(first_missed_at, '86400.0 * ' ~ var('callback_horizon_days')) }}
{%- endmacro %}

{#- The form types that mark a caller as a sales lead (intent rule 3, metrics.md section 3):
    a list for `form_type in (...)`, read by the classified episodes and by the callers'
    fingerprints of int_episode_callers_fingerprinted. -#}
{% macro sales_form_types() -%}
    ('quote', 'pricing', 'demo', 'contact_sales')
{%- endmacro %}

{#-
  Generic test: no two rows of an incremental model share the values of `columns` (or of the
  column it is declared on), read on the keys the build wrote (docs/benchmarks.md,
  "Incremental daily loads").

  An incremental build of these models (macros/incremental.sql) deletes the rows it recomputes
  and appends them again, leaving every other row as the build that tested it left it: a
  duplicate can only involve a row this build wrote. The test takes the keys of the rows
  `scope` names (recomputed_rows below) and counts every row of those keys, old or new,
  instead of grouping the whole table; each scope is the condition of the model's own
  pre-hook (macros/incremental.sql). Every row (unique_combination) on a full refresh and
  where the models are plain tables (Spark).
-#}
{% test unique_recomputed(model, scope, column_name=none, columns=none) %}
{%- set columns = columns or [column_name] %}
{%- set keys = columns | join(', ') %}
{%- if ringledger.incremental_build() %}
with recomputed as (

    select distinct {{ keys }}
    from {{ model }}
    where {{ ringledger.recomputed_rows(scope) }}

)

select {{ keys }}, count(*) as copies
from {{ model }}
inner join recomputed using ({{ keys }})
group by {{ keys }}
having count(*) > 1
{%- else %}
{{ ringledger.test_unique_combination(model, columns) }}
{%- endif %}
{% endtest %}

{#- `where` condition on a model's rows: those an incremental build wrote (a superset), by
    `scope`:
    - 'touched_activities': the activities of int_crm_activities_touched
      (int_crm_activity_calls_linked, touched_records_config);
    - 'new_activity_copies': the activities with a copy loaded after the watermark
      (int_crm_activities_deduplicated, per_record_config);
    - 'touched_calls_and_crm_attempts': the attempts of the calls of int_calls_touched
      ('root') and every CRM-only attempt (int_callback_attempts_unioned, per_call_config);
    - 'touched_callers': the numbers of int_callers_touched and the number-less episodes of
      the recomputed calls (int_missed_call_episodes_collapsed, per_caller_config);
    - 'recomputed_episodes': the rows marked with a load_seq above the watermark
      (int_missed_call_episodes_enriched) or whose episode has such a row there
      (fct_missed_call_episodes_stored). -#}
{% macro recomputed_rows(scope) -%}
    {%- if scope == 'touched_activities' -%}
        {{ ringledger.in_touched_records('activity_id', 'int_crm_activities_touched', incremental=true) }}
    {%- elif scope == 'new_activity_copies' -%}
        activity_id in (
            select activity_id from {{ ref('stg_crm__activities') }}
            where {{ ringledger.loaded_after_watermark() }}
        )
    {%- elif scope == 'touched_calls_and_crm_attempts' -%}
        ({{ ringledger.in_changed('call_id', 'root', incremental=true) }}
            or {{ ringledger.attempts_recomputed_every_build() }})
    {%- elif scope == 'touched_callers' -%}
        {{ ringledger.in_touched_callers('caller_number_e164', incremental=true, call_key_column='first_call_key') }}
    {%- elif scope == 'recomputed_episodes' -%}
        episode_id in (
            select episode_id from {{ ref('int_missed_call_episodes_enriched') }}
            where {{ ringledger.in_episodes_recomputed(incremental=true) }}
        )
    {%- else -%}
        {{ exceptions.raise_compiler_error("unique_recomputed: unknown scope " ~ scope) }}
    {%- endif -%}
{%- endmacro %}

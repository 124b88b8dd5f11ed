{#-
  Incremental per-call models (docs/benchmarks.md, "Incremental daily loads";
  orchestration/incremental.py decides when a build must be a full refresh instead).

  An incremental build of int_calls, int_calls_classified (fct_calls is a view over it) and
  int_callback_attempts_unioned (its PBX attempts) recomputes every call touched by a raw row
  loaded after the watermark (raw.build_state, name 'built') and keeps the other calls' rows;
  int_legs_deduplicated (a per-record model, below) replaces the legs with a new copy by their
  newest copy. "Touched" is a superset, never a subset:
  - a leg key (call_id) with a new copy: the calls of every copy of it (a corrected copy may
    move the leg to another parent: both calls change);
  - an Asterisk queue_log event loaded after the watermark: the calls whose leg uniqueid or
    root id is its callid (int_asterisk_queue_calls' match).
  Keys are matched on call_id alone (without source_system): a call_id of another export
  system is recomputed too, which costs a little and changes nothing.

  The touched keys are computed once per build (models/intermediate/int_calls_touched.sql).
  Each model deletes the rows of the touched keys in a pre-hook and appends the recomputed
  rows (a key whose legs moved away is deleted and not appended again). On a full refresh,
  a first build or Spark (materialized as a table there), none of this renders.
-#}

{# 'incremental' where rows can be replaced by key (DuckDB), a plain table elsewhere. #}
{% macro per_call_materialization() -%}
    {{ return(adapter.dispatch('per_call_materialization', 'ringledger')()) }}
{%- endmacro %}
{% macro default__per_call_materialization() -%}{{ return('table') }}{%- endmacro %}
{% macro duckdb__per_call_materialization() -%}{{ return('incremental') }}{%- endmacro %}

{#- The watermark: the highest load_seq the last complete build consumed; -1 (everything
    loaded is new) when the warehouse has no state table yet (a `dbt build` run by hand on a
    warehouse that `ringledger run` never built). -#}
{% macro built_through_load_seq() -%}
    {%- set state = adapter.get_relation(database=target.database, schema='raw', identifier='build_state') -%}
    {%- if state is none -%}
        cast(-1 as bigint)
    {%- else -%}
        (select coalesce(max(through_load_seq), -1) from {{ state }} where name = 'built')
    {%- endif -%}
{%- endmacro %}

{#- Whether this build can be incremental: no --full-refresh and incremental models on this
    engine. The touched lists (int_calls_touched, int_callers_touched,
    int_crm_activities_touched) are empty otherwise, and the scoped tests read every row. -#}
{% macro incremental_build() -%}
    {{ return(not flags.FULL_REFRESH and ringledger.per_call_materialization() == 'incremental') }}
{%- endmacro %}

{#- `where` condition on a staging model: its rows loaded after the watermark on an incremental
    build, none otherwise. -#}
{% macro loaded_after_watermark() -%}
    {%- if ringledger.incremental_build() -%}
        load_seq > {{ ringledger.built_through_load_seq() }}
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- `where` condition keeping the rows whose `column` is in the touched set of `kind` ('leg':
    leg call_ids, 'root': call roots; int_calls_touched); true on a full build. A model using it
    declares `-- depends_on: {{ ref('int_calls_touched') }}` (dbt parses models as full builds). -#}
{#- (`incremental`, here and in in_touched_callers, in_touched_records, in_episodes_recomputed:
    true or false instead of is_incremental(), for the unique_recomputed tests, where
    is_incremental() is false.) -#}
{% macro in_changed(column, kind, incremental=none) -%}
    {%- if (is_incremental() if incremental is none else incremental) -%}
        {{ column }} in (select call_id from {{ ref('int_calls_touched') }} where kind = '{{ kind }}')
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The rows of int_callback_attempts_unioned it recomputes on every build (`always` of its
    per_call_config; the scope of its unique_recomputed test): the CRM-only attempts. -#}
{% macro attempts_recomputed_every_build() -%}
    attempt_source = 'crm'
{%- endmacro %}

{#- Pre-hook: delete the rows whose `column` is in the touched set, and those where condition
    `always` holds (rows the model recomputes on every build); nothing on a full build. -#}
{% macro delete_changed(column, kind, always=none) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ ringledger.in_changed(column, kind) }}
        {%- if always %} or ({{ always }}){% endif %}
    {%- endif -%}
{%- endmacro %}

{#- The config of a per-call model (int_calls, int_calls_classified and
    int_callback_attempts_unioned, kind 'root'): incremental on DuckDB, rows of the
    touched `call_id`s deleted by a pre-hook, recomputed rows appended. `always`: a condition
    on the rows the model recomputes on every build (int_callback_attempts_unioned: its
    CRM-only attempts, whose times follow clock-skew medians of any date). -#}
{% macro per_call_config(kind, always=none) -%}
    {{ ringledger.replaced_rows_config("{{ ringledger.delete_changed('call_id', '" ~ kind ~ "', " ~ (always | tojson) ~ ") }}") }}
{%- endmacro %}

{#- The config every incremental model here shares: incremental on DuckDB (a plain table
    elsewhere), its recomputed rows appended after `pre_hook` (Jinja rendered when the model
    runs) deleted the rows they replace. -#}
{% macro replaced_rows_config(pre_hook, post_hook=[]) -%}
    {{ config(
        materialized=ringledger.per_call_materialization(),
        incremental_strategy=ringledger.incremental_strategy('append'),
        on_schema_change='fail',
        pre_hook=pre_hook,
        post_hook=post_hook
    ) }}
{%- endmacro %}

{#-
  Per-record models: the CRM exports' `int_crm_*_deduplicated` (one row per record id, the
  newest copy) and int_legs_deduplicated (one row per source_system and call_id). Incremental
  on DuckDB like the per-call models: a build after new loads deletes the rows of every key
  with a copy loaded after the watermark and appends the newest copy of each such key, which
  is one of the copies loaded after the watermark (latest_copies, new_keys_only); every other
  key keeps its row.
  A file superseding or retracting an earlier one deletes raw rows, which no new row names:
  that build is a full refresh (orchestration/incremental.py), as for the legs.
-#}

{#- Pre-hook: delete the rows whose key (`columns`: a column name or a list of them) has a
    copy in `model` (a staging model with load_seq) loaded after the watermark; nothing on a
    full build. The model appends those keys' newest copies (latest_copies, new_keys_only). -#}
{% macro delete_new_copies(columns, model) -%}
    {%- if is_incremental() -%}
        {%- set columns = [columns] if columns is string else columns %}
        delete from {{ this }} as target where exists (
            select 1 from {{ ref(model) }} as new
            where new.load_seq > {{ ringledger.built_through_load_seq() }}
            {%- for column in columns %}
                and new.{{ column }} is not distinct from target.{{ column }}
            {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}

{#- The config of a per-record model keyed by `columns` (a name or a list), deduplicating
    staging model `model`. -#}
{% macro per_record_config(columns, model) -%}
    {{ ringledger.replaced_rows_config("{{ ringledger.delete_new_copies(" ~ (columns | tojson) ~ ", '" ~ model ~ "') }}") }}
{%- endmacro %}

{#-
  Per-caller models: int_missed_call_episodes_collapsed (episodes are a caller number's time
  line) and int_episode_inbound_recoveries (read from the same time line: the episodes and the
  answered inbound calls of one number). Incremental on DuckDB: a build after new loads
  deletes the episodes of the numbers in int_callers_touched, then appends those numbers'
  episodes recomputed from all of their misses and answered calls. A number-less miss is an
  episode of its own (noise: unreachable) that depends on its call alone: the build recomputes
  the number-less misses of the recomputed calls (recomputed_call_roots) and deletes the
  number-less episodes of those calls' keys (numberless_call_keys), rather than every
  number-less episode (~3% of the episodes, ~31% of a day's recomputed ones at a year:
  docs/benchmarks.md, "Seventeenth session"). The rest of the episode chain reads the tables
  in full.
-#}

{#- The root call ids whose misses the episode chain recomputes (a subquery): the calls the
    per-call models recomputed (int_calls_touched 'root') and those a CRM activity with a new
    copy names ('named_root'). -#}
{% macro recomputed_call_roots() -%}
    select call_id from {{ ref('int_calls_touched') }} where kind in {{ ringledger.episode_root_kinds() }}
{%- endmacro %}

{% macro episode_root_kinds() -%}('root', 'named_root'){%- endmacro %}

{#- The call keys of the recomputed call roots (a subquery): a superset of the first_call_key
    of each number-less episode whose call was recomputed, including a call that no longer
    exists or no longer is a number-less miss (its episode is deleted and not appended). -#}
{% macro numberless_call_keys() -%}
    select {{ ringledger.call_key('source_system', 'call_id') }}
    from {{ ref('int_calls_touched') }}
    where kind in {{ ringledger.episode_root_kinds() }}
{%- endmacro %}

{#- `where` condition keeping the rows whose `column` (a caller's E.164) is in
    int_callers_touched, and the number-less rows of a recomputed call: by its root call id
    (`call_id_column`, the misses) or by its call key (`call_key_column`, the episodes: their
    first miss's key); without either, no number-less row. True on a full build. A model
    using it declares `-- depends_on: {{ ref('int_callers_touched') }}` and
    `-- depends_on: {{ ref('int_calls_touched') }}`. -#}
{% macro in_touched_callers(column, incremental=none, call_id_column=none, call_key_column=none) -%}
    {%- if (is_incremental() if incremental is none else incremental) -%}
        ({{ column }} in (select caller_number_e164 from {{ ref('int_callers_touched') }})
        {%- if call_id_column %}
            or ({{ column }} is null and {{ call_id_column }} in ({{ ringledger.recomputed_call_roots() }}))
        {%- elif call_key_column %}
            or ({{ column }} is null and {{ call_key_column }} in ({{ ringledger.numberless_call_keys() }}))
        {%- endif %})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{# Pre-hook: delete the episodes of the touched callers and of the recomputed number-less calls. #}
{% macro delete_touched_callers(column, call_key_column=none) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ ringledger.in_touched_callers(column, call_key_column=call_key_column) }}
    {%- endif -%}
{%- endmacro %}

{#- The config of a per-caller model whose rows carry the caller's number in `column` (and,
    where it holds number-less episodes, their first miss's call key in `call_key_column`). -#}
{% macro per_caller_config(column, call_key_column=none) -%}
    {{ ringledger.replaced_rows_config("{{ ringledger.delete_touched_callers('" ~ column ~ "', " ~ (call_key_column | tojson) ~ ") }}") }}
{%- endmacro %}

{#-
  Models recomputed for a list of touched records (int_crm_activity_calls_linked, by the
  activity ids of int_crm_activities_touched): rows of those ids deleted in a pre-hook, the
  ids' rows recomputed and appended; everything else kept. Incremental on DuckDB.
-#}

{#- `where` condition keeping the rows whose `column` is in `column` of model `touched`; true
    on a full build. A model using it declares `-- depends_on: {{ ref(touched) }}`. -#}
{% macro in_touched_records(column, touched, incremental=none) -%}
    {%- if (is_incremental() if incremental is none else incremental) -%}
        {{ column }} in (select {{ column }} from {{ ref(touched) }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro delete_touched_records(column, touched) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ ringledger.in_touched_records(column, touched) }}
    {%- endif -%}
{%- endmacro %}

{% macro touched_records_config(column, touched) -%}
    {{ ringledger.replaced_rows_config("{{ ringledger.delete_touched_records('" ~ column ~ "', '" ~ touched ~ "') }}") }}
{%- endmacro %}

{#-
  The touched rows of a large input, read once. An incremental model reading a few thousand
  touched rows of a table of millions (several times: int_calls reads its legs three times)
  declares `touched_rows_cte(name, relation, condition)` in its `with`, before the CTEs that
  read it (its condition may name earlier CTEs), and reads
  `touched_rows(name, relation)` wherever it read `relation`: on an incremental build that
  is CTE `name`, the rows where `condition` holds (rows_matching: on DuckDB a narrow scan,
  then the rows fetched by rowid) materialized once; on a full build the CTE is not rendered
  and the model reads `relation` itself (materializing every row would only cost memory).
-#}
{% macro touched_rows_cte(name, relation, condition) -%}
    {%- if is_incremental() %}
{{ name }} as {{ ringledger.materialized_cte() }} (

    {{ ringledger.rows_matching(relation, condition) }}

),
    {%- endif -%}
{%- endmacro %}

{% macro touched_rows(name, relation) -%}
    {%- if is_incremental() -%}{{ name }}{%- else -%}{{ relation }}{%- endif -%}
{%- endmacro %}

{#-
  The rest of the episode chain per caller number (docs/benchmarks.md, "The rest of the episode
  chain per caller number"): int_missed_call_episodes_classified, ..._recovered and ..._timed read the
  collapsed episodes through int_missed_call_episodes_scoped, which on an incremental build
  holds the episodes of
  - the numbers int_missed_call_episodes_collapsed recomputed (int_callers_touched: their
    misses, answered inbound calls and PBX callback attempts are calls of touched calls), and
    the number-less episodes;
  - the numbers whose fingerprint (int_episode_callers_fingerprinted: everything else the
    chain reads of a caller: CRM identity, its customers, wins, survivor owner and
    opportunities up to the as-of time, sales forms, CRM-only callback attempts, and the
    global inputs) changed since the watermark;
  and every episode on a full build. int_missed_call_episodes_enriched stores the chain's rows
  (of those episodes, only the rows that changed replace theirs: changed_rows), and so does
  marts.fct_missed_call_episodes_stored; the marts.fct_missed_call_episodes view computes the
  as-of columns on read. Once the
  enriched episodes are built, a post-hook makes the scoped view every collapsed episode again
  (reset_episode_scope), so that the chain's views read between builds show every episode, as
  after a full build.
-#}

{#- The ledger's highest load_seq now: what a row changed by this build is marked with (the
    watermark the build advances to when it completes). -#}
{% macro current_load_seq() -%}
    (select coalesce(max(load_seq), -1) from {{ source('raw', 'load_ledger') }})
{%- endmacro %}

{#- The collapsed episodes (`relation`) that the chain recomputes on this build, a `select`:
    every episode on a full build; on an incremental one
    - an episode of a number in int_callers_touched whose calls from recompute_from_utc (T)
      on may have changed: every call of the number the build can change starts at or after
      T, and the chain reads a number's calls only through the collapsed episodes (misses and
      answered calls, which int_missed_call_episodes_collapsed recomputes whole: an episode
      whose row changed either gained, lost or split at a miss at or after T, so its last
      miss is within repeat_dial_window_minutes before T or later, or is new, its first miss
      at or after T) and through the calls after its first miss within its callback horizon
      (callback attempts, inbound recoveries: its horizon ends at or after T). The other
      episodes of the number keep their rows (docs/benchmarks.md, "The rest of the episode
      chain from each number's first changed call").
      A left join (int_callers_touched has one row a number): a correlated `exists` with the
      time conditions made the enriched episodes' query 2-5x slower (docs/benchmarks.md,
      "Nineteenth session");
    - every episode of a number whose fingerprint (int_episode_callers_fingerprinted: its CRM
      inputs, CRM-only callback attempts and the global inputs) changed since the watermark;
    - a number-less episode when its call was recomputed (numberless_call_keys) or when every
      caller's fingerprint changed since the watermark (or there is none): the fingerprint's
      global inputs (whether any opportunity is loaded, each site calendar's start) are the
      only inputs of the chain a number-less episode shares with the numbered ones, and a
      change of them changes every fingerprint.
    A model using it declares `-- depends_on: {{ ref('int_callers_touched') }}`,
    `-- depends_on: {{ ref('int_calls_touched') }}` and
    `-- depends_on: {{ ref('int_episode_callers_fingerprinted') }}`. -#}
{% macro scoped_episodes(relation) -%}
    select episodes.* from {{ relation }} as episodes
    {%- if ringledger.incremental_build() %}
    left join {{ ref('int_callers_touched') }} as touched
        on touched.caller_number_e164 = episodes.caller_number_e164
    where
        (touched.caller_number_e164 is not null and (
            {{ seconds_between('episodes.last_missed_at_utc', 'touched.recompute_from_utc') }}
                <= {{ var('repeat_dial_window_minutes') }} * 60
            or {{ ringledger.horizon_ends_at('episodes.first_missed_at_utc') }} >= touched.recompute_from_utc
        ))
        or episodes.caller_number_e164 in (
            select caller_number_e164 from {{ ref('int_episode_callers_fingerprinted') }}
            where load_seq > {{ ringledger.built_through_load_seq() }}
        )
        or (episodes.caller_number_e164 is null and (
            episodes.first_call_key in ({{ ringledger.numberless_call_keys() }})
            or not exists (
                select 1 from {{ ref('int_episode_callers_fingerprinted') }}
                where load_seq <= {{ ringledger.built_through_load_seq() }}
            )
        ))
    {%- endif %}
{%- endmacro %}

{#- Pre-hook of the per-episode models recomputed with the scope: delete the rows of the
    episodes no longer collapsed and, where `scoped` (int_episode_conversions_matched), those of
    the scoped episodes, which the model appends again; int_missed_call_episodes_enriched keeps
    them (changed_rows, drop_replaced_rows). Nothing on a full build. -#}
{% macro delete_scoped_episodes(scoped=true) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stored
        where
        {%- if scoped %} stored.episode_id in (select episode_id from {{ ref('int_missed_call_episodes_scoped') }})
            or{% endif %} not exists (
                select 1 from {{ ref('int_missed_call_episodes_collapsed') }} as episodes
                where episodes.episode_id = stored.episode_id
            )
    {%- endif -%}
{%- endmacro %}

{#- The rows of CTE `cte` (one per `key`, with a `row_hash` of its other columns) that an
    incremental build of int_missed_call_episodes_enriched appends: a new key, or a row whose
    hash differs from the stored row's, so that a recomputed episode whose row did not change
    keeps its stored row and load_seq (the mart then rewrites only the changed ones: ~11% of
    the recomputed episodes on the year's day, docs/benchmarks.md). Compares two stored columns,
    not every one. A 64-bit hash: a changed row taken for unchanged is possible in principle
    (~1 in 10^19 a row), as for the callers' fingerprints. Every row on a full build. -#}
{% macro changed_rows(cte, key) -%}
    select {{ cte }}.* from {{ cte }}
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as stored
        where stored.{{ key }} = {{ cte }}.{{ key }}
            and stored.row_hash = {{ cte }}.row_hash
    )
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of int_missed_call_episodes_enriched: of the rows of each episode written since the
    watermark, only the newest stays (this build's transaction appended its rows after every
    stored row: the highest rowid). rowid is DuckDB's; the model is incremental only there.
    Nothing on a full build. -#}
{% macro drop_replaced_rows(key) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where rowid in (
            select rowid from (
                select
                    rowid,
                    row_number() over (partition by {{ key }} order by rowid desc) as copy
                from {{ this }}
                where {{ key }} in (
                    select {{ key }} from {{ this }} where {{ ringledger.in_episodes_recomputed() }}
                )
            ) as copies
            where copy > 1
        )
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of int_missed_call_episodes_enriched: int_missed_call_episodes_scoped as every
    collapsed episode (what a full build compiles it to); nothing on a full build. -#}
{% macro reset_episode_scope() -%}
    {%- if is_incremental() -%}
        create or replace view {{ ref('int_missed_call_episodes_scoped') }} as
        select * from {{ ref('int_missed_call_episodes_collapsed') }}
    {%- endif -%}
{%- endmacro %}

{#-
  marts.fct_missed_call_episodes_stored (the stored part of the fct_missed_call_episodes view),
  incremental on DuckDB: the episodes int_missed_call_episodes_enriched recomputed since the
  watermark (its load_seq above it) replace their rows and the rows of episodes it no longer
  holds are deleted (pre-hook); every other row stays. The view computes the as-of columns on
  read (marts.dim_as_of_clocks); their expressions come from one macro
  (episode_as_of_values).
-#}

{#- The episodes the stored mart (re)writes: `where` condition on
    int_missed_call_episodes_enriched; true on a full build. -#}
{% macro in_episodes_recomputed(incremental=none) -%}
    {%- if (is_incremental() if incremental is none else incremental) -%}
        load_seq > {{ ringledger.built_through_load_seq() }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro delete_recomputed_episodes() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as stored
        where stored.episode_id in (
            select episode_id from {{ ref('int_missed_call_episodes_enriched') }}
            where {{ ringledger.in_episodes_recomputed() }}
        )
            or not exists (
                select 1 from {{ ref('int_missed_call_episodes_enriched') }} as episodes
                where episodes.episode_id = stored.episode_id
            )
    {%- endif -%}
{%- endmacro %}

{#- The as-of columns of an episode (`episodes`: marts.fct_missed_call_episodes_stored's
    columns) for the as-of time, from `as_of` and `site_as_of` joined on the episode's site
    (metrics.md sections 4 and 6): a mapping of column name to SQL expression. -#}
{% macro episode_as_of_values() -%}
    {{ return({
        'as_of_utc': 'as_of.as_of_utc',
        'minutes_to_sla': 'cast(' ~ minutes_to_sla('episodes.sla_target_cumulative_seconds', 'site_as_of.cumulative_at_as_of') ~ ' as double)',
        'sla_status': sla_status(
            'episodes.sla_business_minutes',
            'episodes.sla_due_at_utc',
            'episodes.first_attempt_at_utc',
            'episodes.first_inbound_recovery_at_utc',
            'as_of.as_of_utc'
        ),
        'is_in_revenue_lookback': '(not episodes.is_noise and episodes.first_missed_at_utc >= '
            ~ add_seconds('as_of.as_of_utc', '-86400.0 * ' ~ var('revenue_lookback_days'))
            ~ ' and episodes.first_missed_at_utc <= as_of.as_of_utc)',
    }) }}
{%- endmacro %}

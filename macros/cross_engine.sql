{#-
  The only engine-specific SQL of the project. Every expression that DuckDB and Spark write
  differently is a dispatched macro here, with a duckdb__ and a spark__ version and a
  default__ that fails loudly (see ../shared/portability.md and docs/architecture.md).
  Write the rest once: explicit NULLS FIRST/LAST in every ORDER BY, UTC instants, durations
  from seconds (never minute/hour datediff), `string` (not varchar) as the text type.
  The hand-over of tables between DuckDB and Spark (hooks, seed loading) is in
  spark_handover.sql.
-#}

{% macro _unsupported(name) -%}
    {{ exceptions.raise_compiler_error("ringledger: macro " ~ name ~ " has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{# ---- safe casts: NULL instead of an error on a bad value ---------------------------- #}
{% macro safe_cast(expression, data_type) -%}
    {{ return(adapter.dispatch('safe_cast', 'ringledger')(expression, data_type)) }}
{%- endmacro %}
{% macro default__safe_cast(expression, data_type) -%}{{ ringledger._unsupported('safe_cast') }}{%- endmacro %}
{% macro duckdb__safe_cast(expression, data_type) -%}try_cast({{ expression }} as {{ data_type }}){%- endmacro %}
{% macro spark__safe_cast(expression, data_type) -%}try_cast({{ expression }} as {{ data_type }}){%- endmacro %}

{# ---- text flags: true/false/1/0/yes/no -> boolean ------------------------------------- #}
{% macro parse_bool(column) -%}
    case
        when lower(trim({{ column }})) in ('true', 't', '1', 'yes', 'y') then true
        when lower(trim({{ column }})) in ('false', 'f', '0', 'no', 'n') then false
    end
{%- endmacro %}

{# ---- seconds between two instants, fractional, from microseconds --------------------- #}
{% macro seconds_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('seconds_between', 'ringledger')(start_ts, end_ts)) }}
{%- endmacro %}
{% macro default__seconds_between(start_ts, end_ts) -%}{{ ringledger._unsupported('seconds_between') }}{%- endmacro %}
{#- a double on both engines: `bigint / 1000000.0` is a DECIMAL on Spark, and later divisions
    of it would round at another digit than DuckDB's double -#}
{% macro duckdb__seconds_between(start_ts, end_ts) -%}
    (cast(epoch_us({{ end_ts }}) - epoch_us({{ start_ts }}) as double) / 1000000.0)
{%- endmacro %}
{% macro spark__seconds_between(start_ts, end_ts) -%}
    (cast(unix_micros({{ end_ts }}) - unix_micros({{ start_ts }}) as double) / 1000000.0)
{%- endmacro %}

{# ---- an instant plus a (fractional) number of seconds ---------------------------------- #}
{% macro add_seconds(ts, seconds) -%}
    {{ return(adapter.dispatch('add_seconds', 'ringledger')(ts, seconds)) }}
{%- endmacro %}
{% macro default__add_seconds(ts, seconds) -%}{{ ringledger._unsupported('add_seconds') }}{%- endmacro %}
{% macro duckdb__add_seconds(ts, seconds) -%}
    make_timestamp(epoch_us({{ ts }}) + cast(round(({{ seconds }}) * 1000000.0) as bigint))
{%- endmacro %}
{% macro spark__add_seconds(ts, seconds) -%}
    timestamp_micros(unix_micros({{ ts }}) + cast(round(({{ seconds }}) * 1000000.0) as bigint))
{%- endmacro %}

{# ---- a UTC instant as wall-clock time of an IANA zone (well defined: no gap/overlap) --- #}
{% macro utc_to_local(ts, tz) -%}
    {{ return(adapter.dispatch('utc_to_local', 'ringledger')(ts, tz)) }}
{%- endmacro %}
{% macro default__utc_to_local(ts, tz) -%}{{ ringledger._unsupported('utc_to_local') }}{%- endmacro %}
{% macro duckdb__utc_to_local(ts, tz) -%}
    cast(timezone({{ tz }}, cast({{ ts }} as timestamptz)) as timestamp)
{%- endmacro %}
{% macro spark__utc_to_local(ts, tz) -%}
    from_utc_timestamp({{ ts }}, {{ tz }})
{%- endmacro %}

{# ---- rows of a space-separated list (select-list expression) -------------------------- #}
{% macro explode_split(column, delimiter) -%}
    {{ return(adapter.dispatch('explode_split', 'ringledger')(column, delimiter)) }}
{%- endmacro %}
{% macro default__explode_split(column, delimiter) -%}{{ ringledger._unsupported('explode_split') }}{%- endmacro %}
{% macro duckdb__explode_split(column, delimiter) -%}
    unnest(string_split({{ column }}, '{{ delimiter }}'))
{%- endmacro %}
{% macro spark__explode_split(column, delimiter) -%}
    explode(split({{ column }}, '{{ delimiter }}'))
{%- endmacro %}

{# ---- exact continuous percentile (linear interpolation), usable with grouping sets ---- #}
{% macro percentile_cont(expression, fraction) -%}
    {{ return(adapter.dispatch('percentile_cont', 'ringledger')(expression, fraction)) }}
{%- endmacro %}
{% macro default__percentile_cont(expression, fraction) -%}{{ ringledger._unsupported('percentile_cont') }}{%- endmacro %}
{% macro duckdb__percentile_cont(expression, fraction) -%}
    quantile_cont({{ expression }}, {{ fraction }})
{%- endmacro %}
{% macro spark__percentile_cont(expression, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ expression }})
{%- endmacro %}

{# ---- several exact continuous percentiles of one expression as a list, one sort ------- #}
{#- DuckDB sorts each quantile_cont aggregate separately: three percentiles of one column in
    one aggregate take a third of the sorting (mart_callback_delay_percentiles: 2.9 -> 1.5 s
    at a year's episodes). Read an element with list_item (1-based). -#}
{% macro percentiles_cont(expression, fractions) -%}
    {{ return(adapter.dispatch('percentiles_cont', 'ringledger')(expression, fractions)) }}
{%- endmacro %}
{% macro default__percentiles_cont(expression, fractions) -%}{{ ringledger._unsupported('percentiles_cont') }}{%- endmacro %}
{% macro duckdb__percentiles_cont(expression, fractions) -%}
    quantile_cont({{ expression }}, [{{ fractions | join(', ') }}])
{%- endmacro %}
{% macro spark__percentiles_cont(expression, fractions) -%}
    percentile({{ expression }}, array({{ fractions | join(', ') }}))
{%- endmacro %}

{# ---- an element of a list/array, 1-based ---------------------------------------------- #}
{% macro list_item(expression, position) -%}
    {{ return(adapter.dispatch('list_item', 'ringledger')(expression, position)) }}
{%- endmacro %}
{% macro default__list_item(expression, position) -%}{{ ringledger._unsupported('list_item') }}{%- endmacro %}
{% macro duckdb__list_item(expression, position) -%}
    list_extract({{ expression }}, {{ position }})
{%- endmacro %}
{% macro spark__list_item(expression, position) -%}
    element_at({{ expression }}, {{ position }})
{%- endmacro %}

{# ---- one row per integer of [start, stop] (select-list expression) ------------------- #}
{% macro explode_range(start, stop) -%}
    {{ return(adapter.dispatch('explode_range', 'ringledger')(start, stop)) }}
{%- endmacro %}
{% macro default__explode_range(start, stop) -%}{{ ringledger._unsupported('explode_range') }}{%- endmacro %}
{% macro duckdb__explode_range(start, stop) -%}
    unnest(generate_series({{ start }}, {{ stop }}))
{%- endmacro %}
{% macro spark__explode_range(start, stop) -%}
    explode(sequence({{ start }}, {{ stop }}))
{%- endmacro %}

{# ---- keyed hash already computed at ingest; text digest for surrogate keys ------------ #}
{% macro surrogate_key(columns) -%}
    {{ return(adapter.dispatch('surrogate_key', 'ringledger')(columns)) }}
{%- endmacro %}
{% macro default__surrogate_key(columns) -%}{{ ringledger._unsupported('surrogate_key') }}{%- endmacro %}
{% macro duckdb__surrogate_key(columns) -%}
    md5({% for c in columns %}coalesce(cast({{ c }} as varchar), '~'){% if not loop.last %} || '|' || {% endif %}{% endfor %})
{%- endmacro %}
{% macro spark__surrogate_key(columns) -%}
    md5({% for c in columns %}coalesce(cast({{ c }} as string), '~'){% if not loop.last %} || '|' || {% endif %}{% endfor %})
{%- endmacro %}

{# ---- incremental strategy per engine (config(incremental_strategy=...)) -------------- #}
{#- DuckDB replaces the rows of the keys it rebuilds; Spark on plain Parquet has no merge or
    delete (those need Delta/Iceberg): insert_overwrite replaces the partitions it rebuilds
    (with partition_by) or the whole table; `append` where rows are never rebuilt. -#}
{% macro incremental_strategy(kind='replace_keys') -%}
    {{ return(adapter.dispatch('incremental_strategy', 'ringledger')(kind)) }}
{%- endmacro %}
{% macro default__incremental_strategy(kind) -%}{{ ringledger._unsupported('incremental_strategy') }}{%- endmacro %}
{% macro duckdb__incremental_strategy(kind) -%}
    {{ return('append' if kind == 'append' else 'delete+insert') }}
{%- endmacro %}
{% macro spark__incremental_strategy(kind) -%}
    {{ return('append' if kind == 'append' else 'insert_overwrite') }}
{%- endmacro %}

{# ---- the rows of a table matching a condition, read once ------------------------------ #}
{#- A `select *` of the rows of table `relation` where `condition` (on its unqualified
    columns) holds. DuckDB: the condition is evaluated on a scan of its own columns only and
    the matching rows are then fetched by rowid, so that a few thousand rows of a wide table
    of millions cost a narrow scan, not a decompression of every column (docs/benchmarks.md,
    ninth session). -#}
{% macro rows_matching(relation, condition) -%}
    {{ return(adapter.dispatch('rows_matching', 'ringledger')(relation, condition)) }}
{%- endmacro %}
{% macro default__rows_matching(relation, condition) -%}{{ ringledger._unsupported('rows_matching') }}{%- endmacro %}
{% macro duckdb__rows_matching(relation, condition) -%}
    select * from {{ relation }} where rowid in (select rowid from {{ relation }} where {{ condition }})
{%- endmacro %}
{% macro spark__rows_matching(relation, condition) -%}
    select * from {{ relation }} where {{ condition }}
{%- endmacro %}

{# ---- a CTE computed once for all of its readers -------------------------------------- #}
{% macro materialized_cte() -%}
    {{ return(adapter.dispatch('materialized_cte', 'ringledger')()) }}
{%- endmacro %}
{% macro default__materialized_cte() -%}{{ ringledger._unsupported('materialized_cte') }}{%- endmacro %}
{% macro duckdb__materialized_cte() -%}materialized{%- endmacro %}
{#- Spark has no such keyword: it plans each reader of a CTE on its own. -#}
{% macro spark__materialized_cte() -%}{%- endmacro %}

{# ---- 64-bit hashes for change detection (int_episode_callers_fingerprinted) ----------- #}
{#- row_hash: one value from several columns (nulls hash too); set_hash: an aggregate over a
    group's rows that does not depend on their order (the xor of each row's hash; pair it with
    a count, since two equal rows cancel out). Not for keys: a 64-bit hash can collide. -#}
{% macro row_hash(columns) -%}
    {{ return(adapter.dispatch('row_hash', 'ringledger')(columns)) }}
{%- endmacro %}
{% macro default__row_hash(columns) -%}{{ ringledger._unsupported('row_hash') }}{%- endmacro %}
{% macro duckdb__row_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}
{% macro spark__row_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}

{% macro set_hash(columns) -%}
    bit_xor({{ ringledger.row_hash(columns) }})
{%- endmacro %}

{#- Every column of the rows of `alias` (a CTE or table in the FROM clause) as one value, for
    row_hash: on DuckDB the alias itself (the row as a struct), on Spark struct(alias.*). -#}
{% macro whole_row(alias) -%}
    {{ return(adapter.dispatch('whole_row', 'ringledger')(alias)) }}
{%- endmacro %}
{% macro default__whole_row(alias) -%}{{ ringledger._unsupported('whole_row') }}{%- endmacro %}
{% macro duckdb__whole_row(alias) -%}{{ alias }}{%- endmacro %}
{% macro spark__whole_row(alias) -%}struct({{ alias }}.*){%- endmacro %}

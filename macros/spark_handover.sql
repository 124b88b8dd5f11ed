{#-
  How tables cross between DuckDB and Spark (docs/scale-out.md). Ingest always lands `raw.*`
  in the DuckDB warehouse (gates and publication read DuckDB). With the spark engine:
    - ingest also writes each raw table as Parquet under $RINGLEDGER_SPARK_DIR/raw/<table>/;
    - on-run-start (register_raw_tables) declares them as external Parquet tables `raw.<table>`
      in the Spark catalog (Derby metastore under $RINGLEDGER_SPARK_DIR, one JVM at a time);
    - on-run-end (export_built_relations) writes every seed and model the run built to
      $RINGLEDGER_SPARK_DIR/export/<schema>/<name>/ as Parquet; the Dagster dbt step then copies
      them into the DuckDB warehouse under the same names (orchestration/spark.py).
  On DuckDB both hooks are no-ops.
-#}

{% macro spark_dir() -%}
    {%- set base = env_var('RINGLEDGER_SPARK_DIR', '') -%}
    {%- if not base or not base.startswith('/') -%}
        {{ exceptions.raise_compiler_error("ringledger: RINGLEDGER_SPARK_DIR must be an absolute directory (the runner sets it; got '" ~ base ~ "')") }}
    {%- endif -%}
    {{ return(base.rstrip('/')) }}
{%- endmacro %}

{# ---- on-run-start: the raw Parquet files as external tables -------------------------- #}
{% macro register_raw_tables() -%}
    {{ return(adapter.dispatch('register_raw_tables', 'ringledger')()) }}
{%- endmacro %}
{% macro default__register_raw_tables() -%}{{ ringledger._unsupported('register_raw_tables') }}{%- endmacro %}
{% macro duckdb__register_raw_tables() -%}{%- endmacro %}
{% macro spark__register_raw_tables() -%}
    {%- if execute -%}
        {%- set base = ringledger.spark_dir() -%}
        {%- do run_query('create schema if not exists raw') -%}
        {%- for source in graph.sources.values() if source.source_name == 'raw' -%}
            {%- set name = source.identifier -%}
            {#- dropping an external table forgets it; its files stay -#}
            {%- do run_query('drop table if exists raw.' ~ name) -%}
            {%- do run_query("create table raw." ~ name ~ " using parquet location '" ~ base ~ "/raw/" ~ name ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{# ---- on-run-end: what this run built, as Parquet for DuckDB -------------------------- #}
{% macro export_built_relations(results) -%}
    {{ return(adapter.dispatch('export_built_relations', 'ringledger')(results)) }}
{%- endmacro %}
{% macro default__export_built_relations(results) -%}{{ ringledger._unsupported('export_built_relations') }}{%- endmacro %}
{% macro duckdb__export_built_relations(results) -%}{%- endmacro %}
{% macro spark__export_built_relations(results) -%}
    {%- if execute -%}
        {%- set base = ringledger.spark_dir() -%}
        {%- for result in results
            if result.node.resource_type in ('model', 'seed') and result.status == 'success' -%}
            {%- set schema = result.node.schema -%}
            {%- set name = result.node.alias or result.node.name -%}
            {%- do run_query(
                "insert overwrite directory '" ~ base ~ "/export/" ~ schema ~ "/" ~ name ~ "'"
                ~ " using parquet select * from " ~ schema ~ "." ~ name
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{# ---- seeds on Spark without the quadratic loader ------------------------------------- #}
{#- dbt-spark's loader infers every column's type once per cell (agate scans the column each
    time: quadratic, 752 s for 20 k rows), even when column_types declares it; and the session
    method pastes its bindings into the SQL unescaped (a quote in a holiday name breaks it).
    Here: types resolved once per column, values written as escaped Spark literals. -#}
{% macro spark_seed_literal(value) -%}
    {%- if value is none -%}null
    {%- else -%}'{{ (value | string).replace('\\', '\\\\').replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}

{% macro spark__load_csv_rows(model, agate_table) %}
    {% set batch_size = get_batch_size() %}
    {% set column_override = model['config'].get('column_types', {}) %}
    {% set types = [] %}
    {% for col_name in agate_table.column_names %}
        {% do types.append(column_override.get(col_name) or adapter.convert_type(agate_table, loop.index0)) %}
    {% endfor %}
    {% set statements = [] %}
    {% for chunk in agate_table.rows | batch(batch_size) %}
        {% set sql %}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for value in row -%}
                    cast({{ ringledger.spark_seed_literal(value) }} as {{ types[loop.index0] }})
                    {%- if not loop.last %},{% endif -%}
                {%- endfor -%})
                {%- if not loop.last %},{% endif %}
            {%- endfor %}
        {% endset %}
        {% do adapter.add_query(sql, abridge_sql_log=True) %}
        {% if loop.index0 == 0 %}
            {% do statements.append(sql) %}
        {% endif %}
    {% endfor %}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}

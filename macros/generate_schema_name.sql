{#- Use the custom schema name as is (raw, seeds, staging, intermediate, marts), so BI tools
    and the spec see `marts.fct_calls`, not `main_marts.fct_calls`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

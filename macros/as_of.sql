{#-
  The as-of instant (metrics.md, conventions): the `as_of` var (ISO 8601, converted to naive
  UTC here), else the latest started_at of any telephony leg loaded. Never the wall clock.
-#}
{% macro as_of_utc() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none or value == '' -%}
        (select max(started_at_utc) from {{ ref('stg_telephony__legs') }})
    {%- else -%}
        {%- set parsed = modules.datetime.datetime.fromisoformat(value | string) -%}
        {%- if parsed.tzinfo is not none -%}
            {%- set parsed = parsed.astimezone(modules.pytz.utc).replace(tzinfo=none) -%}
        {%- endif -%}
        cast('{{ parsed.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}

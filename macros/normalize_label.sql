{#- Lower-case a free-text label and fold `-` and spaces to `_` ("Wrong Number" -> wrong_number). -#}
{% macro normalize_label(column) -%}
    nullif(lower(replace(replace(trim({{ column }}), '-', '_'), ' ', '_')), '')
{%- endmacro %}

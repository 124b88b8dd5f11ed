{#- A logical call's key (int_calls.call_key): its source system and root call id (the parent
    leg's id, else the leg's own). One formula for int_calls and for the keys of the calls an
    incremental build recomputes (macros/incremental.sql, numberless_call_keys). -#}
{% macro call_key(source_system, root_call_id) -%}
    {{ surrogate_key([source_system, root_call_id]) }}
{%- endmacro %}

{#-
  Wilson score interval of a binomial proportion, no continuity correction (metrics.md
  section 6). `successes` and `trials` are SQL expressions, `z` the normal quantile (the
  `wilson_z` var, computed in Python from `revenue_interval`). Null where trials is 0 or null or successes is null; clamped to
  [0, 1] against rounding (greatest/least skip nulls on both engines, hence the case).
  Plain arithmetic and sqrt: the same SQL on every engine.
-#}
{% macro wilson_bound(successes, trials, z, side) -%}
    {%- set p = '(cast(' ~ successes ~ ' as double) / nullif(' ~ trials ~ ', 0))' -%}
    {%- set n = '(cast(nullif(' ~ trials ~ ', 0) as double))' -%}
    {%- set zz = '(' ~ z ~ ') * (' ~ z ~ ')' -%}
    case
        when {{ p }} is null then null
        {% if side == 'low' -%}
        when {{ p }} = 0 then 0.0
        {%- else -%}
        when {{ p }} = 1 then 1.0
        {%- endif %}
        else
    {{ 'greatest(0.0, ' if side == 'low' else 'least(1.0, ' }}(
        ({{ p }} + {{ zz }} / (2.0 * {{ n }}))
        {{ '-' if side == 'low' else '+' }} ({{ z }}) * sqrt(
            {{ p }} * (1.0 - {{ p }}) / {{ n }} + {{ zz }} / (4.0 * {{ n }} * {{ n }})
        )
    ) / (1.0 + {{ zz }} / {{ n }}))
    end
{%- endmacro %}

{% macro wilson_low(successes, trials, z) -%}
    {{ wilson_bound(successes, trials, z, 'low') }}
{%- endmacro %}

{% macro wilson_high(successes, trials, z) -%}
    {{ wilson_bound(successes, trials, z, 'high') }}
{%- endmacro %}

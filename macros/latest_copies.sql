{#-
  The newest delivered copy of each key of `relation` (metrics.md section 1: the copy from the
  newest export file wins: highest load_seq, then the later source_line), as CTE definitions
  ending in one named `name`: every column of `relation`, then copy_rank (always 1), then, with
  count_copies, copies_delivered (how many copies of the key were delivered). Rows failing
  `where` (a condition on the relation's columns) are left out before counting.

  Performance (docs/benchmarks.md, dbt profile): a copy delivered again is rare, so the copies
  are counted by a hash aggregate that keeps only the keys delivered more than once; every other
  row is kept by an anti join against that small set (not a join of every row to its key's
  count), and only the repeated keys go through the ranking window; a window over every row
  sorts all of its columns. The relation is read in each
  branch, not through one shared CTE: DuckDB materializes a CTE read twice, which costs more
  than reading a table or a staging view again. Portable SQL (DuckDB and Spark).
-#}
{% macro latest_copies(name, relation, key_columns, where=none, count_copies=false) -%}
{%- set filtered -%}
    (select * from {{ relation }}{% if where %} where {{ where }}{% endif %})
{%- endset -%}
{%- set key_match -%}
    {%- for column in key_columns %}
        {% if not loop.first %}and {% endif %}copies.{{ column }} is not distinct from source.{{ column }}
    {%- endfor %}
{%- endset -%}
{{ name }}_copies as (

    select
        {%- for column in key_columns %}
        {{ column }},
        {%- endfor %}
        count(*) as copies_delivered
    from {{ filtered }} as source
    group by {{ key_columns | join(', ') }}
    having count(*) > 1

),

{{ name }}_single as (

    select
        source.*,
        cast(1 as bigint) as copy_rank
        {%- if count_copies %},
        cast(1 as bigint) as copies_delivered
        {%- endif %}
    from {{ filtered }} as source
    where not exists (
        select 1 from {{ name }}_copies as copies
        where {{ key_match }}
    )

),

{{ name }}_ranked as (

    select
        source.*,
        row_number() over (
            partition by {% for column in key_columns %}source.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
            order by source.load_seq desc nulls last, source.source_line desc nulls last
        ) as copy_rank
        {%- if count_copies %},
        copies.copies_delivered
        {%- endif %}
    from {{ filtered }} as source
    inner join {{ name }}_copies as copies
        on {{ key_match }}

),

{{ name }} as (

    select * from {{ name }}_single
    union all
    select * from {{ name }}_ranked where copy_rank = 1

)
{%- endmacro %}

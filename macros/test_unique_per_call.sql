{#-
  Generic test: no two rows of a per-call table share the values of `columns` (or of the
  column it is declared on), read on the
  calls the build recomputed (docs/benchmarks.md, "Incremental daily loads").

  An incremental build of the per-call models (macros/incremental.sql) writes only the rows of
  the calls in int_calls_touched and leaves every other row as the build that tested it left
  it, so a duplicate can only involve a touched call: the test reads the rows whose
  `call_id_column` is in the touched set of `kind` ('leg': leg call_ids, 'root': call roots)
  instead of the whole table. Every row on a full refresh and where the per-call models are
  plain tables (Spark). A build without --full-refresh on a warehouse never built (a
  `dbt build` by hand) touches every call (no watermark), so it reads every row too.
-#}
{% test unique_per_call(model, column_name=none, columns=none, kind='root', call_id_column='call_id') %}
{%- set columns = columns or [column_name] %}
{%- set touched = ref('int_calls_touched') %}
{%- set scoped = ringledger.incremental_build() %}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
{%- if scoped %}
where {{ call_id_column }} in (select call_id from {{ touched }} where kind = '{{ kind }}')
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

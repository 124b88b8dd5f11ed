"""ringledger: missed-call revenue intelligence warehouse (Dagster + dbt + DuckDB)."""

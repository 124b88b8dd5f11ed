"""A daily run of everything."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from orchestration.jobs import everything_job

daily_schedule = ScheduleDefinition(
    name="ringledger_daily",
    job=everything_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Every day at 06:00 UTC, after the nightly exports land.",
)

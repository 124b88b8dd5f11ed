"""The landing sensor reacts to new files and never opens the warehouse."""

from __future__ import annotations

from dagster import RunRequest, SkipReason, build_sensor_context

from orchestration.sensors import landing_files_sensor, landing_fingerprint


def test_fingerprint_changes_with_files(tmp_path):
    assert landing_fingerprint(tmp_path) is None
    (tmp_path / "telephony").mkdir()
    (tmp_path / "telephony" / "calls_a.csv").write_text("x\n")
    first = landing_fingerprint(tmp_path)
    (tmp_path / "telephony" / "calls_b.csv").write_text("y\n")
    assert landing_fingerprint(tmp_path) not in (None, first)


def test_sensor_requests_a_run_once_per_change(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    warehouse = tmp_path / "warehouse.duckdb"  # never created: the sensor must not open it
    monkeypatch.setenv("RINGLEDGER_LANDING_DIR", str(landing))
    monkeypatch.setenv("RINGLEDGER_WAREHOUSE", str(warehouse))
    assert isinstance(landing_files_sensor(build_sensor_context()), SkipReason)
    (landing / "crm").mkdir(parents=True)
    (landing / "crm" / "contacts_1.csv").write_text("contact_id\n")
    context = build_sensor_context()
    request = landing_files_sensor(context)
    assert isinstance(request, RunRequest)
    again = landing_files_sensor(build_sensor_context(cursor=context.cursor))
    assert isinstance(again, SkipReason)
    assert not warehouse.exists()

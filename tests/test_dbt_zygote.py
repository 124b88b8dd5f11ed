"""The run's dbt fork server (orchestration/dbt_zygote.py): its launcher runs dbt in a child of
the server, with the launcher's arguments, working directory, environment, streams and exit
code, and becomes the installed dbt whenever the server cannot be reached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestration import project
from orchestration.config import load_config
from orchestration.dbt_zygote import REAL_DBT_ENV, DbtZygote, is_launcher
from orchestration.resources import dbt_executable, dbt_resource


def _warm(state: Path | None = None) -> dict:
    """The run's warm-up request: its vars, the warehouse's saved parse state."""
    return {
        "vars": json.dumps(load_config(None).dbt_vars()),
        "state": str(state) if state else None,
    }


def _wait_for(server: DbtZygote, warmed: bool) -> None:
    deadline = time.monotonic() + 120
    # listening once its imports are done, serving once its warm-up is over
    while not os.path.exists(server.socket_path) or (warmed and server.warm_up_outcome is None):
        assert server.process.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server never listened"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def zygote():
    """A server warmed up as the run's (the builds below are forked from the warmed state)."""
    with DbtZygote(dbt_executable(), warm=_warm()) as server:
        _wait_for(server, warmed=True)
        assert server.warm_up_outcome == "ok"
        yield server


def _run(
    executable: str, args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_the_launcher_runs_dbt_in_the_server_with_its_streams_cwd_and_env(zygote, tmp_path):
    # the installed dbt is made unreachable: only a child of the server can answer
    env = _server_only(zygote, tmp_path)
    env.pop("DBT_PROFILES_DIR", None)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    (workdir / "profiles.yml").write_text("{}\n")  # dbt's profiles directory: the cwd's
    done = _run(zygote.executable, ["debug", "--config-dir"], env, workdir)
    assert done.returncode == 0, done.stderr
    assert str(workdir) in done.stdout  # the launcher's cwd, on the launcher's stdout
    env["DBT_PROFILES_DIR"] = str(tmp_path / "profiles-from-the-env")
    done = _run(zygote.executable, ["debug", "--config-dir"], env, workdir)
    assert done.returncode == 0, done.stderr
    assert "profiles-from-the-env" in done.stdout  # the launcher's environment


def _server_only(zygote, tmp_path) -> dict[str, str]:
    """The launcher's environment with the installed dbt made unreachable: a result can only
    come from a child of the server (the fallback exec would fail)."""
    return {**os.environ, **zygote.environment(), REAL_DBT_ENV: str(tmp_path / "missing" / "dbt")}


def test_the_launcher_returns_dbt_exit_codes_and_stderr(zygote, tmp_path):
    env = _server_only(zygote, tmp_path)
    forked = _run(zygote.executable, ["no-such-command"], env, project.REPO_ROOT)
    plain = _run(dbt_executable(), ["no-such-command"], dict(os.environ), project.REPO_ROOT)
    assert plain.returncode == 2
    assert (forked.returncode, forked.stderr) == (plain.returncode, plain.stderr)


def test_without_a_server_the_launcher_execs_the_installed_dbt(zygote, tmp_path):
    env = {**os.environ, **zygote.environment()}
    env["RINGLEDGER_DBT_ZYGOTE_SOCKET"] = str(tmp_path / "nothing-listens-here.sock")
    marker = tmp_path / "real-dbt-ran"
    fake = tmp_path / "dbt"
    fake.write_text(f'#!/bin/sh\necho "$@" > {marker}\nexit 7\n')
    fake.chmod(0o755)
    env["RINGLEDGER_DBT_ZYGOTE_REAL_DBT"] = str(fake)
    done = _run(zygote.executable, ["build", "--select", "x"], env, tmp_path)
    assert done.returncode == 7
    assert marker.read_text().split() == ["build", "--select", "x"]


def test_the_resource_takes_the_launcher_and_this_environments_dbt_version(zygote):
    assert is_launcher(Path(zygote.executable))
    assert not is_launcher(Path(dbt_executable()))
    resource = dbt_resource(zygote.executable)
    assert resource.dbt_executable == zygote.executable
    assert resource._cli_version == dbt_resource()._cli_version


def test_a_launcher_that_could_not_run_is_not_used(monkeypatch):
    """No fork server where the launcher could not run (an interpreter path with a space, which
    a `#!` line cannot carry): no server started, and the run's builds start dbt afresh."""
    from orchestration import runner

    server = DbtZygote(dbt_executable(), interpreter="/opt/my python/bin/python3")
    assert not server.usable and server.process is None
    server.close()
    assert not server.directory.exists()
    monkeypatch.delenv(runner.FORK_SERVER_ENV, raising=False)
    with runner._dbt_fork_server() as zygote:
        assert zygote is not None  # this machine: usable

    class Unusable(DbtZygote):
        def __init__(self, real_dbt: str, warm: dict | None = None) -> None:
            super().__init__(real_dbt, interpreter="/opt/my python/bin/python3", warm=warm)

    monkeypatch.setattr("orchestration.dbt_zygote.DbtZygote", Unusable)
    with runner._dbt_fork_server() as zygote:
        assert zygote is None
    assert "RINGLEDGER_DBT_ZYGOTE_SOCKET" not in os.environ


def test_closing_stops_the_server_and_removes_its_directory():
    server = DbtZygote(dbt_executable())
    server.close()
    assert server.process.poll() is not None
    assert not server.directory.exists()


def test_closing_kills_a_server_that_outlives_sigterm_after_the_grace():
    """A server that does not end on SIGTERM is killed after SERVER_STOP_GRACE_SECONDS, not
    after the 10 s a run's end once waited for one."""
    import signal

    from orchestration.dbt_zygote import SERVER_STOP_GRACE_SECONDS

    server = DbtZygote(dbt_executable())
    server.stop_server()
    stubborn = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(120)"
    )
    server.process = subprocess.Popen(
        [sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True
    )
    assert server.process.stdout.readline().strip() == "ready"
    started = time.monotonic()
    server.close()
    waited = time.monotonic() - started
    assert server.process.returncode == -signal.SIGKILL
    assert SERVER_STOP_GRACE_SECONDS <= waited < SERVER_STOP_GRACE_SECONDS + 4
    server.process.stdout.close()


def test_the_run_uses_the_fork_server_unless_switched_off(monkeypatch):
    from orchestration import runner

    monkeypatch.delenv(runner.FORK_SERVER_ENV, raising=False)
    with runner._dbt_fork_server() as zygote:
        executable = zygote.executable
        assert is_launcher(Path(executable))
        assert os.environ["RINGLEDGER_DBT_ZYGOTE_SOCKET"].startswith(str(Path(executable).parent))
    assert "RINGLEDGER_DBT_ZYGOTE_SOCKET" not in os.environ
    assert not Path(executable).parent.exists()
    monkeypatch.setenv(runner.FORK_SERVER_ENV, "0")
    with runner._dbt_fork_server() as zygote:
        assert zygote is None
    monkeypatch.delenv(runner.FORK_SERVER_ENV)
    monkeypatch.setattr(runner.sys, "platform", "darwin")  # Linux only
    with runner._dbt_fork_server() as zygote:
        assert zygote is None


def test_a_build_whose_launcher_is_gone_ends(tmp_path):
    """A forked build watches its launcher's connection: once the launcher is gone (killed),
    the build kills itself rather than go on writing the warehouse for nobody."""
    import signal
    import socket

    from orchestration.dbt_zygote import _end_with_the_launcher

    build_side, launcher_side = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the build: watches, then would run for a minute
        launcher_side.close()
        try:
            _end_with_the_launcher(build_side)
            time.sleep(60)
        finally:
            os._exit(0)
    build_side.close()
    time.sleep(0.2)
    assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # still running while the launcher is there
    launcher_side.close()
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_a_forked_build_ends_like_dbt_warehouse_closed_nothing_leaked(zygote, tmp_path):
    """The forked build exits as the `dbt` script does (atexit handlers, finalizers): when the
    launcher returns, the warehouse is closed and checkpointed (no WAL left, free to open) and
    no multiprocessing semaphore is reported leaked."""
    import duckdb

    warehouse = tmp_path / "warehouse.duckdb"
    env = {**_server_only(zygote, tmp_path), "RINGLEDGER_WAREHOUSE": str(warehouse)}
    env.pop("RINGLEDGER_SEED_DIR", None)
    done = _run(
        zygote.executable,
        ["seed", "--select", "sites", "--project-dir", ".", "--profiles-dir", "."],
        env,
        project.REPO_ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "leaked" not in done.stderr
    assert not Path(f"{warehouse}.wal").exists()
    with duckdb.connect(str(warehouse)) as con:  # DuckDB's lock is free at once
        assert con.execute("select count(*) from seeds.sites").fetchone()[0] > 0


def _project_files() -> dict[str, tuple[int, int]]:
    """What a parse could write in the project: target/'s files, dbt's log."""
    files = [*(project.REPO_ROOT / "target").glob("*"), project.REPO_ROOT / "logs" / "dbt.log"]
    return {
        str(path): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in files
        if path.is_file()
    }


def test_the_warm_up_parses_in_the_server_and_writes_nothing_of_the_project(tmp_path):
    """The server's warm-up is a `dbt parse` in the server itself (its forked builds then skip
    dbt's lazy first-use work): from a copy of the warehouse's saved parse state, writing only
    into the server's directory."""
    before = _project_files()
    # no saved state (a new warehouse): a full parse; its state, saved, makes the next partial
    state = tmp_path / "partial_parse.msgpack"
    for expected in ("full", "partial"):
        with DbtZygote(dbt_executable(), warm=_warm(state)) as server:
            _wait_for(server, warmed=True)
            assert server.wait_for_warm_up() == "ok"
            written = {path.name for path in server.warm_target.iterdir()}
            # what the run installs in target/ (runner._install_warm_parse)
            assert {"manifest.json", "partial_parse.msgpack", "parse.kind"} <= written
            assert (server.warm_target / "parse.kind").read_text() == expected
            manifest = json.loads((server.warm_target / "manifest.json").read_text())
            assert "model.ringledger.fct_missed_call_episodes" in manifest["nodes"]
            state.write_bytes((server.warm_target / "partial_parse.msgpack").read_bytes())
            assert _project_files() == before
        assert not server.directory.exists()


def test_a_failed_warm_up_leaves_the_server_serving(tmp_path):
    with DbtZygote(dbt_executable(), warm={"vars": "{not yaml: [", "state": None}) as server:
        _wait_for(server, warmed=True)
        assert server.warm_up_outcome.startswith("dbt parse failed")
        env = _server_only(server, tmp_path)
        done = _run(server.executable, ["--version"], env, project.REPO_ROOT)
        assert done.returncode == 0, done.stderr
        assert "Core" in done.stdout or "installed" in done.stdout


def test_without_a_warm_up_request_the_server_does_not_parse():
    with DbtZygote(dbt_executable()) as server:
        _wait_for(server, warmed=False)
        time.sleep(0.5)
        assert server.warm_up_outcome is None
        assert not (server.directory / "warm-up").exists()


def test_a_warm_up_that_never_ends_stops_the_server_and_builds_run_the_installed_dbt(tmp_path):
    """The run waits for the warm-up at most `timeout` seconds (WARM_UP_TIMEOUT_SECONDS): then
    the server is stopped, and the launcher, with nothing listening, execs the installed dbt."""
    with DbtZygote(dbt_executable()) as server:  # no warm-up requested: no outcome ever comes
        _wait_for(server, warmed=False)
        started = time.monotonic()
        assert server.wait_for_warm_up(timeout=0.5) == "timed out"
        assert 0.5 <= time.monotonic() - started < 15
        assert server.process.poll() is not None
        marker = tmp_path / "real-dbt-ran"
        fake = tmp_path / "dbt"
        fake.write_text(f'#!/bin/sh\necho "$@" > {marker}\nexit 7\n')
        fake.chmod(0o755)
        env = {**os.environ, **server.environment(), REAL_DBT_ENV: str(fake)}
        done = _run(server.executable, ["build", "--select", "x"], env, tmp_path)
        assert done.returncode == 7
        assert marker.read_text().split() == ["build", "--select", "x"]


def test_the_run_waits_for_the_warm_up_with_a_timeout(tmp_path, monkeypatch):
    """A warm-up that timed out is not the run's parse: the run parses in its own process."""
    from orchestration import dbt_zygote, runner

    import threading

    monkeypatch.setattr(dbt_zygote, "WARM_UP_TIMEOUT_SECONDS", 0.25)
    with DbtZygote(dbt_executable()) as server:
        _wait_for(server, warmed=False)
        taken: list = []
        waiting = threading.Thread(
            target=lambda: taken.append(
                runner._install_warm_parse(server, tmp_path / "warehouse.duckdb")
            ),
            daemon=True,
        )
        waiting.start()
        waiting.join(timeout=30)  # without the timeout the wait never ends: fail, not hang
        assert not waiting.is_alive(), "the run waited for the warm-up without a timeout"
        assert taken == [None]
        assert server.process.poll() is not None


def test_a_full_parse_in_the_warm_up_leaves_the_server_single_threaded(tmp_path):
    """fork() carries only the calling thread: a thread pool left by the warm-up (dbt's
    static parser, Rust, starts one) would hang every forked build that parses files. A
    warm-up with no saved state (a full parse) must leave one thread."""
    code = (
        "import json, sys; from pathlib import Path;"
        "from orchestration.dbt_zygote import _os_threads, _warm_up;"
        "outcome = _warm_up(Path(sys.argv[1]), json.loads(sys.argv[2]));"
        "print(outcome, _os_threads())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), json.dumps(_warm())],
        cwd=project.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "1"]

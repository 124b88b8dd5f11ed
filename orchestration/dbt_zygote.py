"""A dbt fork server for the pipeline's `dbt build`s: dbt imported once, each build forked.

dagster-dbt runs every `dbt build` as a new `dbt` process, which spends ~2 s importing dbt
and its adapter before its first node (docs/benchmarks.md, tenth session). `run_pipeline`
starts one server process per run (`DbtZygote`) that imports them once and waits on a Unix
socket; the executable dagster-dbt runs is then a small launcher script (standard library
only, Python started without `site`) that hands its argument list, working directory,
environment and standard streams to the server, which forks a child that sets them up and
runs dbt's own command line entry point, as the `dbt` script would. The child reports its
process id and then its exit code to the launcher, which exits with it once the child has
ended (a normal interpreter exit, as dbt's own) and forwards SIGINT and SIGTERM to the child (dagster-dbt interrupts a cancelled build with SIGINT); a child
whose launcher is gone (killed) kills itself. The server and its children stay in the run's
process group, like the dbt processes they replace. Asked to (`DbtZygote(warm=...)`, as the
run does), the server first warms up with one `dbt parse` in itself (`_warm_up`), so that the
builds forked from it also skip dbt's first-use work (docs/benchmarks.md, eleventh session).

Whenever the server cannot be reached (not started, gone, refused) the launcher becomes the
installed `dbt` (exec): same arguments, same streams, only slower. The server exits when the
process that started it is gone, and `DbtZygote.close()` stops it and removes its directory.
This module imports only the standard library at the top: the launcher imports it.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

SOCKET_ENV = "RINGLEDGER_DBT_ZYGOTE_SOCKET"
REAL_DBT_ENV = "RINGLEDGER_DBT_ZYGOTE_REAL_DBT"
# the server's warm-up (`DbtZygote(warm=...)`): JSON {"vars": ..., "state": ...} in its env
WARM_ENV = "RINGLEDGER_DBT_ZYGOTE_WARM"
# written in the server's directory once its warm-up is over: "ok" or what went wrong
WARM_DONE = "warm-up.done"
# the warm-up's own target directory (in the server's directory): its manifest.json and
# partial_parse.msgpack, and PARSE_KIND ("full" or "partial")
WARM_TARGET = "warm-up"
PARSE_KIND = "parse.kind"
# how long a run waits for the warm-up's parse (6-10 s at most on the 2-core machine) before
# it takes it for hung: the server is stopped and the run parses in its own process
WARM_UP_TIMEOUT_SECONDS = 300.0
# how long stopping the server waits after SIGTERM before SIGKILL (DbtZygote.stop_server)
SERVER_STOP_GRACE_SECONDS = 1.0
# dbt's events that say a parse reused its saved state
PARTIAL_PARSE_EVENTS = frozenset({"PartialParsingEnabled", "PartialParsingSkipParsing"})
# what the children inherit: dbt's command line, the adapters' plugins and the build task
PRELOADED = (
    "dbt.cli.main",
    "dbt.task.build",
    "dbt.parser.manifest",
    "dbt.parser.schema_yaml_readers",
    "dbt.adapters.duckdb",
    "google.protobuf.descriptor_pb2",
)
_HEADER = struct.Struct("!Q")


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("connection closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_line(sock: socket.socket) -> bytes | None:
    """One newline-terminated line, None when the peer closed before a newline."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            return None
        line += chunk
    return line


def launch(argv: list[str] | None = None) -> None:
    """The launcher's body: run `dbt argv[1:]` in a child of the server, or exec dbt."""
    argv = list(sys.argv if argv is None else argv)
    real = os.environ.get(REAL_DBT_ENV) or "dbt"
    path = os.environ.get(SOCKET_ENV, "")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        payload = json.dumps(
            {"argv": argv[1:], "cwd": os.getcwd(), "env": dict(os.environ), "real": real}
        ).encode()
        socket.send_fds(sock, [_HEADER.pack(len(payload))], [0, 1, 2])
        sock.sendall(payload)
        pid_line = _read_line(sock)
    except OSError:
        pid_line = None
    if pid_line is None:  # nothing of dbt ran: run the installed one
        sock.close()
        os.execvp(real, [real, *argv[1:]])
    pid = int(pid_line)

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code_line = _read_line(sock)
    while code_line is not None and sock.recv(4096):  # until the child process has ended
        pass
    # a child that ended without reporting was killed: exit as a signalled dbt would fail
    os._exit(int(code_line) if code_line is not None else 1)


def _end_with_the_launcher(conn: socket.socket) -> None:
    """The launcher sends nothing after its request: end of stream means it is gone (killed),
    and a dbt nobody waits for must not go on writing the warehouse."""
    try:
        gone = conn.recv(1) == b""
    except OSError:
        gone = True
    if gone:
        os.kill(os.getpid(), signal.SIGKILL)


def _child(conn: socket.socket, fds: list[int], request: dict) -> None:
    code = 1
    try:
        conn.sendall(f"{os.getpid()}\n".encode())
        threading.Thread(target=_end_with_the_launcher, args=(conn,), daemon=True).start()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # dbt may wait for its own children
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["real"], *request["argv"]]
        from dbt.cli.main import cli

        try:
            code = cli()  # click's standalone mode: ends in SystemExit
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        except KeyboardInterrupt:
            code = 130
    except BaseException:  # noqa: BLE001 - reported on the build's stderr, exit code 1
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe: nothing more to say
                pass
        try:
            conn.sendall(f"{code}\n".encode())
        except OSError:
            pass
    # A normal interpreter exit, as the `dbt` script's: atexit handlers and finalizers run
    # (multiprocessing's semaphores are released, dbt-duckdb's connection is closed and
    # checkpointed). The launcher waits for the end of its connection, which a copy of the
    # socket kept open until the process is gone marks: not before the warehouse is closed.
    global _HELD_UNTIL_EXIT
    _HELD_UNTIL_EXIT = os.dup(conn.fileno())
    raise SystemExit(code if isinstance(code, int) and 0 <= code < 256 else 1)


_HELD_UNTIL_EXIT: int | None = None


def _warm_up(directory: Path, warm: dict) -> str:
    """Run one `dbt parse` in the server itself, so that every build forked later inherits
    what dbt builds lazily on its first use in a process and would otherwise build again in
    each build: the JSON schemas that validate the project and profile, the (de)serializers
    mashumaro generates for the manifest's classes (reading the partial-parse state). A
    forked build's time before its first node: ~2.0 s → ~1.0 s (docs/benchmarks.md).

    It is also the run's parse: the runner installs its manifest and parse state in the
    project's target/ once the ingest is done (`runner._install_warm_parse`); the builds'
    own parses then find nothing changed. Nothing of the project is written here: the parse
    reads a copy of the warehouse's saved parse state (`warm["state"]`, when there is one) and
    writes into the server's directory (`WARM_TARGET`, with `PARSE_KIND`), logs nothing. Its
    adapter is unregistered afterwards (a parse opens no connection; its lock's semaphore is
    released before any fork). Any failure only leaves the builds as slow as without it, and
    the runner parses in its own process as it would without the server."""
    outcome = "ok"
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    target = directory / WARM_TARGET
    partial: list[str] = []

    def collect(event) -> None:
        if event.info.name in PARTIAL_PARSE_EVENTS:
            partial.append(event.info.name)

    try:
        target.mkdir()
        state = warm.get("state")
        if state and os.path.isfile(state):
            shutil.copyfile(state, target / "partial_parse.msgpack")
        os.environ.pop("RINGLEDGER_SEED_DIR", None)  # as the run's own parse
        from dbt.adapters.factory import reset_adapters
        from dbt.cli.main import dbtRunner

        result = dbtRunner(callbacks=[collect]).invoke(
            [
                "parse",
                "--project-dir",
                saved_cwd,  # the server runs in the project (DbtZygote)
                "--profiles-dir",
                saved_cwd,
                "--target-path",
                str(target),
                "--log-path",
                str(target),
                "--log-level",
                "none",
                "--log-level-file",
                "none",
                # dbt's static parser (Rust) starts native threads, which a fork does not
                # carry over: a forked build parsing with it would wait on them forever
                "--no-static-parser",
                "--vars",
                warm.get("vars") or "{}",
            ]
        )
        reset_adapters()
        # the adapter's multiprocessing lock sits in a reference cycle: collected now, its
        # semaphore is released here rather than by the finalizer every forked build inherits
        gc.collect()
        if not result.success:
            outcome = f"dbt parse failed: {result.exception}"
        else:
            (target / PARSE_KIND).write_text("partial" if partial else "full")
    except Exception as error:  # noqa: BLE001 - the builds only lose the warm start
        outcome = f"{type(error).__name__}: {error}"
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
    return outcome


def _os_threads() -> int:
    """This process's threads, native ones included (Linux)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


# how DbtZygote starts the server: `python <_SERVER_ARGS> <socket path>`
_SERVER_ARGS = ("-c", "import sys; from orchestration.dbt_zygote import serve; serve(sys.argv[1])")


def serve(path: str, preload: tuple[str, ...] = PRELOADED) -> None:
    """The server's loop: import `preload`, listen on `path`, warm up when its environment
    asks for it (WARM_ENV), fork a child per request."""
    import importlib

    for module in preload:
        try:
            importlib.import_module(module)
        except ImportError:
            pass  # an adapter that is not installed: its children import what they need
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C stops the builds, not the server
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    os.rename(path + ".new", path)  # the path exists only once the imports are done
    listener.listen(8)
    warm = os.environ.pop(WARM_ENV, None)
    if warm is not None:  # a build asking meanwhile waits in the listen backlog
        outcome = _warm_up(Path(path).parent, json.loads(warm))
        threads = _os_threads()
        if threads > 1:
            outcome = f"discarded: {threads} threads after it, the server restarted without it"
        (Path(path).parent / WARM_DONE).write_text(outcome + "\n")
        if threads > 1:
            # a thread that fork() would not carry over (a native library's pool): start
            # afresh, without the warm-up (the builds waiting see the connection close and
            # run the installed dbt)
            os.execv(sys.executable, [sys.executable, *_SERVER_ARGS, path])
    # what the server holds now (dbt imported, warmed up) moves to the collector's permanent
    # generation: a forked build's collections then skip it instead of walking (and, writing
    # their headers, copying) the inherited pages
    gc.freeze()
    listener.settimeout(1.0)
    while os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        fds: list[int] = []
        try:
            header, fds, _flags, _address = socket.recv_fds(conn, _HEADER.size, 3)
            (size,) = _HEADER.unpack(header + _read_exactly(conn, _HEADER.size - len(header)))
            request = json.loads(_read_exactly(conn, size))
            if len(fds) != 3:
                raise ConnectionError("expected three standard streams")
            pid = os.fork()
        except (OSError, ValueError):
            pid = -1  # the launcher sees the connection close without a pid and execs dbt
        if pid == 0:
            listener.close()
            _child(conn, fds, request)
        for fd in fds:
            os.close(fd)
        conn.close()


_LAUNCHER_MARK = "from orchestration.dbt_zygote import launch"


def is_launcher(path: Path) -> bool:
    """Whether `path` is a launcher written by `DbtZygote` (it runs this environment's dbt)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return _LAUNCHER_MARK in handle.read(1000)
    except OSError:
        return False


class DbtZygote:
    """One run's server and launcher (`executable`), stopped by `close()`. `usable` is False
    (and no server started) where the launcher could not run: an interpreter path a `#!` line
    cannot carry (a space, too long), a temporary directory mounted noexec, a socket path
    beyond the Unix limit (~108 bytes). The builds then start dbt afresh."""

    def __init__(
        self, real_dbt: str, interpreter: str = sys.executable, warm: dict | None = None
    ) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="ringledger-dbt-"))
        self.socket_path = str(self.directory / "server.sock")
        self.real_dbt = real_dbt
        self.executable = str(self.directory / "dbt")
        self.process: subprocess.Popen | None = None
        shebang = f"#!{interpreter} -S"
        noexec = os.statvfs(self.directory).f_flag & getattr(os, "ST_NOEXEC", 0)
        self.usable = (
            " " not in interpreter
            and len(shebang) < 128
            and not noexec
            and len(os.fsencode(self.socket_path)) < 100
        )
        if not self.usable:
            return
        repo = Path(__file__).resolve().parent.parent
        Path(self.executable).write_text(
            f"{shebang}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(repo)!r})\n"
            f"{_LAUNCHER_MARK}\n"
            "launch()\n"
        )
        os.chmod(self.executable, 0o755)
        self.process = subprocess.Popen(
            [interpreter, *_SERVER_ARGS, self.socket_path],
            cwd=repo,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **({WARM_ENV: json.dumps(warm)} if warm is not None else {})},
            # in the run's process group, as a dbt child of the run was: a signal to the
            # group (a terminal's Ctrl-C, a SIGKILL of the whole run) reaches the builds too
        )

    @property
    def warm_up_outcome(self) -> str | None:
        """ "ok" once the server's warm-up is over (what went wrong otherwise), None before
        it ends or without one."""
        try:
            return (self.directory / WARM_DONE).read_text().strip()
        except OSError:
            return None

    def wait_for_warm_up(self, poll: float = 0.05, timeout: float | None = None) -> str | None:
        """`warm_up_outcome` once the warm-up is over; None at once if the server never
        started or is gone before writing it. After `timeout` seconds without an outcome the
        server is stopped (`stop_server`: the builds then run the installed dbt through the
        launcher) and the outcome is "timed out"."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            outcome = self.warm_up_outcome
            if outcome is not None or self.process is None or self.process.poll() is not None:
                return outcome
            if deadline is not None and time.monotonic() >= deadline:
                self.stop_server()
                return "timed out"
            time.sleep(poll)

    def stop_server(self) -> None:
        """Stop the server but keep the launcher: with nothing listening on its socket, the
        launcher runs the installed dbt itself. SIGTERM first, SIGKILL after
        SERVER_STOP_GRACE_SECONDS: the server holds nothing to save (its builds are its
        children), and a run's end once waited 10 s here for a server that outlived SIGTERM
        (docs/benchmarks.md, sixteenth session)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=SERVER_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def warm_target(self) -> Path:
        """The warm-up's target directory: manifest.json, partial_parse.msgpack, PARSE_KIND."""
        return self.directory / WARM_TARGET

    def environment(self) -> dict[str, str]:
        """What the launcher needs in its environment."""
        return {SOCKET_ENV: self.socket_path, REAL_DBT_ENV: self.real_dbt}

    def close(self) -> None:
        self.stop_server()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> DbtZygote:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

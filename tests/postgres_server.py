"""A throwaway PostgreSQL server for tests: initdb into a temp folder, start it on a free port.

Usage (the examples below are not doctests: they need the PostgreSQL binaries)::

    with start_postgres(tmp_path / "pg") as pg:
        url = pg.create_database("ledger")     # postgresql://postgres:...@127.0.0.1:PORT/ledger
        pg.stop()                               # e.g. to test "server went away mid-run"
        pg.start()                              # same port, same data

The server listens only on 127.0.0.1 and on a unix socket inside its own folder, so it never
clashes with (or touches) any other PostgreSQL running on the host. Durability is switched off
(fsync, synchronous_commit, full_page_writes) because test data is thrown away anyway.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import attrs
import psycopg
from psycopg import sql

HOST = "127.0.0.1"
SUPERUSER = "postgres"
# A unix socket path must fit sun_path (108 bytes): keep a margin for "/.s.PGSQL.65535".
_MAX_SOCKET_DIR = 90


class PostgresError(RuntimeError):
    """initdb, pg_ctl or the first connection failed; the message has the command and its log."""


def find_binaries() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: PATH first, then Debian's versioned folders.

    Usage::

        bin_dir = find_binaries()   # e.g. Path("/usr/lib/postgresql/15/bin"), or None
    """
    initdb = shutil.which("initdb")
    if initdb and (Path(initdb).parent / "pg_ctl").exists():
        return Path(initdb).parent
    # Debian and Ubuntu keep the server binaries off PATH, one folder per major version.
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if (p.parent / "pg_ctl").exists()]
    candidates.sort(key=lambda b: [int(x) if x.isdigit() else 0 for x in b.parent.name.split(".")])
    return candidates[-1] if candidates else None


@attrs.frozen
class PostgresServer:
    """A PostgreSQL server made by `start_postgres`; `stop()` and `start()` keep port and data.

    Usage::

        with psycopg.connect(pg.admin_url) as conn: ...
        pg.url("alice", "secret", "ledger")   # a URL for another role
    """

    bin_dir: Path
    folder: Path
    port: int
    password: str
    # The command prefix that drops root privileges (runuser/setpriv), empty when not root.
    run_as: tuple[str, ...] = ()
    host: str = HOST

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "log"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    @property
    def admin_url(self) -> str:
        return self.url(SUPERUSER, self.password, "postgres")

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, or None when it is stopped."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def url(self, user: str, password: str, dbname: str) -> str:
        return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def create_database(self, name: str) -> str:
        """Create database `name` (UTF8, C collation) and return the admin URL to it."""
        query = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
        # CREATE DATABASE cannot run inside a transaction block, hence autocommit.
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(query.format(sql.Identifier(name)))
        return self.url(SUPERUSER, self.password, name)

    def start(self) -> None:
        """Start the (stopped) server on its port and wait until it accepts connections."""
        # The port goes on the command line, not in postgresql.conf, so that a retry after a
        # port clash (see start_postgres) only needs a new value here.
        self._run("pg_ctl", "start", "-w", "-t", "30", "-D", self.data, "-l", self.log, "-o", f"-p {self.port}")
        self._wait_for_connections()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (pg_ctl modes: smart, fast, immediate); the data stays for `start()`."""
        self._run("pg_ctl", "stop", "-w", "-t", "30", "-m", mode, "-D", self.data)

    def _run(self, program: str, *args: object) -> str:
        cmd = [*self.run_as, str(self.bin_dir / program), *map(str, args)]
        # cwd: the unprivileged user may not be able to enter the caller's working directory.
        done = subprocess.run(cmd, cwd=self.folder, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise PostgresError(f"{shlex.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{self._log_tail()}")
        return done.stdout

    def _log_tail(self, lines: int = 30) -> str:
        try:
            tail = self.log.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return ""
        return f"--- last lines of {self.log} ---\n" + "\n".join(tail)

    def _wait_for_connections(self, timeout: float = 30) -> None:
        # pg_ctl -w already waits, but its check can pass before TCP logins work (e.g. while
        # the startup process still recovers after an immediate stop), so also log in for real.
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.admin_url, connect_timeout=2).close()
                return
            except psycopg.OperationalError as e:
                if time.monotonic() > deadline:
                    raise PostgresError(f"no connection to {self.host}:{self.port} after {timeout}s: {e}\n{self._log_tail()}") from e
                time.sleep(0.1)


@contextlib.contextmanager
def start_postgres(folder: Path, *, password: str | None = None) -> Iterator[PostgresServer]:
    """Run a fresh PostgreSQL in `folder` (created, and removed on exit) for the `with` block.

    `password` is the `postgres` superuser's; a random one by default. Raises PostgresError
    when initdb or pg_ctl fail. As root, the server runs as the `postgres` user (else `nobody`),
    because PostgreSQL refuses to run as root.

    Usage::

        with start_postgres(tmp_path / "pg") as pg:
            with psycopg.connect(pg.admin_url) as conn:
                conn.execute("SELECT 1")
    """
    bin_dir = find_binaries()
    if bin_dir is None:
        raise PostgresError("initdb and pg_ctl not found on PATH nor in /usr/lib/postgresql/*/bin (see .ci/install-postgresql)")
    password = password or secrets.token_hex(16)
    user = _unprivileged_user() if os.geteuid() == 0 else None
    root = _choose_folder(Path(folder), user)
    server = None
    try:
        run_as = _drop_root_prefix(user) if user else ()
        if user:
            os.chown(root, user.pw_uid, user.pw_gid)
        server = PostgresServer(bin_dir=bin_dir, folder=root, port=_free_port(), password=password, run_as=run_as)
        _initdb(server, user)
        _configure(server)
        # Another process may take the free port between probing and binding: retry on a clash.
        for attempt in range(3):
            try:
                server.start()
                break
            except PostgresError as e:
                if attempt == 2 or "Address already in use" not in str(e):
                    raise
                server = attrs.evolve(server, port=_free_port())
        yield server
    finally:
        if server is not None:
            _stop_for_good(server)
        shutil.rmtree(root, ignore_errors=True)


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresError("running as root, and there is neither a `postgres` nor a `nobody` user to run PostgreSQL as")


def _drop_root_prefix(user: pwd.struct_passwd) -> tuple[str, ...]:
    if shutil.which("runuser"):
        return ("runuser", "-u", user.pw_name, "--")
    if shutil.which("setpriv"):
        return ("setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups")
    raise PostgresError("running as root, and neither runuser nor setpriv is there to run PostgreSQL as another user")


def _choose_folder(folder: Path, user: pwd.struct_passwd | None) -> Path:
    """`folder` itself when it will work, else a fresh folder under /tmp.

    It will not work when the unprivileged user cannot traverse its parents (pytest's
    /tmp/pytest-of-root is 0700), or when its socket path would be too long for a unix socket.
    """
    folder = folder.absolute()
    usable = len(str(folder / "socket")) <= _MAX_SOCKET_DIR and (user is None or _traversable(folder.parent, user))
    if usable:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    root = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
    root.chmod(0o755)
    return root


def _traversable(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` can reach inside `path` (every existing ancestor has the right x bit)."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for p in [path, *path.parents]:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue  # created later by mkdir(parents=True), with the umask's (usually 0755) mode
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _initdb(server: PostgresServer, user: pwd.struct_passwd | None) -> None:
    pwfile = server.folder / "pwfile"
    pwfile.write_text(server.password + "\n")
    pwfile.chmod(0o600)
    if user:
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    base = ("-D", server.data, f"--username={SUPERUSER}", f"--pwfile={pwfile}", "--auth=scram-sha-256",
            "--encoding=UTF8", "--no-sync")
    try:
        try:
            server._run("initdb", *base, "--locale=C.UTF-8")
        except PostgresError as e:
            # Minimal images may lack the C.UTF-8 locale; plain C works with any encoding.
            if "invalid locale" not in str(e).lower():
                raise
            shutil.rmtree(server.data, ignore_errors=True)
            server._run("initdb", *base, "--locale=C")
    finally:
        pwfile.unlink(missing_ok=True)


def _configure(server: PostgresServer) -> None:
    # In postgresql.conf rather than `pg_ctl -o "-c ..."`: it survives stop()/start() and
    # needs no shell quoting of the socket folder's path. Later lines win over initdb's.
    server.socket_dir.mkdir()
    if server.run_as:
        owner = server.folder.stat()
        os.chown(server.socket_dir, owner.st_uid, owner.st_gid)
    socket_dir = str(server.socket_dir).replace("'", "''")
    settings = f"""
# added by tests/postgres_server.py
listen_addresses = '{HOST}'
unix_socket_directories = '{socket_dir}'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
"""
    with open(server.data / "postgresql.conf", "a") as f:
        f.write(settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stop_for_good(server: PostgresServer) -> None:
    """Stop the server by its own data folder; kill its postmaster by pid if pg_ctl cannot."""
    if server.pid is None:
        return
    try:
        server.stop(mode="immediate")
        return
    except (PostgresError, OSError, subprocess.TimeoutExpired):
        pass  # e.g. pg_ctl itself is gone: fall back to signalling the postmaster
    pid = server.pid
    # A stale postmaster.pid may name a pid since reused: only signal a postgres on our data.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, TypeError):
        return
    if str(server.data).encode() in cmdline:
        # SIGQUIT is the postmaster's "immediate shutdown"; it takes its children with it.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)

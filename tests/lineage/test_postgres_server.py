"""The throwaway PostgreSQL server used by the PostgreSQL ledger tests (tests/postgres_server.py)."""

import socket
from pathlib import Path

import psycopg
import pytest

from postgres_server import PostgresError, find_binaries, start_postgres

pytestmark = pytest.mark.skipif(
    find_binaries() is None,
    reason="PostgreSQL server binaries (initdb, pg_ctl) not found: run .ci/install-postgresql",
)


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    # One server for the module: initdb + start is the slow part (about a second).
    with start_postgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


def test_admin_connects_and_creates_a_database(pg):
    url = pg.create_database("ledger test")  # a name that needs quoting, in SQL and in the URL
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_database(), current_user, pg_encoding_to_char(encoding), datcollate"
                           " FROM pg_database WHERE datname = current_database()").fetchone()
    assert row == ("ledger test", "postgres", "UTF8", "C")


def test_wrong_password_is_refused(pg):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg.url("postgres", "wrong", "postgres"))


def test_listens_on_127_0_0_1_only(pg):
    with psycopg.connect(pg.admin_url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (str(pg.socket_dir),)
    # All of 127/8 reaches the loopback interface, but nothing is bound on 127.0.0.2.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", pg.port), timeout=2).close()


def test_stop_and_start_keep_port_and_data(pg):
    url = pg.create_database("persist")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (42)")
    first_pid, port = pg.pid, pg.port

    pg.stop()
    assert pg.pid is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)

    pg.start()
    assert pg.pid not in (None, first_pid) and pg.port == port
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]


def test_server_is_stopped_and_removed_on_exit(tmp_path):
    with start_postgres(tmp_path / "pg", password="it's secret") as server:
        pid = server.pid
        psycopg.connect(server.admin_url).close()  # a password that needs quoting in the URL
    assert not server.folder.exists()
    assert not _running(pid)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=2).close()


def _running(pid: int) -> bool:
    """Whether `pid` runs; an exited postmaster may linger as a zombie until init reaps it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_failures_name_the_command_and_its_output(pg):
    with pytest.raises(PostgresError, match=r"pg_ctl start .*failed"):
        pg.start()  # already running

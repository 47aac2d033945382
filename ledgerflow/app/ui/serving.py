"""Serving the app: bind the address first (so the URL printed is the one listening, port 0
included), then run uvicorn on that socket until Ctrl-C or SIGTERM, which stop it cleanly."""

from __future__ import annotations

import ipaddress
import socket

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_warning(host: str) -> str | None:
    """The one-line warning for an address other machines may reach; None for loopback."""
    if is_loopback(host):
        return None
    return (f"lineage ui: warning: serving on {host}: anyone who can reach it can read the whole ledger and "
            "download every stored artifact (there is no authentication); the default is 127.0.0.1")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one. OSError if taken."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """http://HOST:PORT/ of a bound socket (an IPv6 host in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def server(app):
    """A uvicorn Server for `app`, quiet but for errors; `.run(sockets=[sock])` serves until
    it is told to stop (`should_exit = True`) or gets SIGINT/SIGTERM."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False,
                            timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def serve(app, sock: socket.socket) -> None:
    """Serve `app` on `sock` until Ctrl-C (SIGINT) or SIGTERM; returns after a clean shutdown."""
    server(app).run(sockets=[sock])

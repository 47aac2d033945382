"""Is the process that is recording an execution still alive?

A pid alone can't say: pids are reused. So the ledger records, with the pid, the
process's start time as the kernel counts it (field 22 of /proc/<pid>/stat, in clock
ticks since boot) and the boot id; a process with the same pid but another start time is
someone else. Where /proc is missing (macOS) psutil is used if installed, else only
whether the pid exists.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_PROC = Path("/proc")


def _boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple | None:
    """(state, starttime) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    rest = text[text.rindex(")") + 2 :].split()
    return rest[0], rest[19]


def process_start(pid: int) -> str | None:
    """A token identifying the process `pid` for as long as it lives, or None if it doesn't.

    >>> process_start(os.getpid()) == process_start(os.getpid())
    True
    """
    if _PROC.is_dir():
        stat = _proc_stat(pid)
        return None if stat is None else f"{_boot_id()}:{stat[1]}"
    try:
        import psutil  # optional

        return f"psutil:{psutil.Process(pid).create_time()}"
    except ImportError:
        return None
    except Exception:  # psutil.NoSuchProcess and friends
        return None


def started_this_boot(start: str | None) -> bool:
    """Whether a process-start token was taken on this machine since it booted (False when the
    token names another boot: before a reboot, or another machine carrying the same name).

    >>> started_this_boot(process_start(os.getpid()))
    True
    """
    if start is None or not _PROC.is_dir() or start.startswith("psutil:"):
        return start is not None
    return start.startswith(f"{_boot_id()}:")


def this_host() -> str:
    return socket.gethostname()


def is_alive(host: str | None, pid: int | None, start: str | None) -> bool | None:
    """True/False for a process on this host; None when it runs elsewhere (we can't tell)."""
    if host != this_host() or pid is None:
        return None
    if _PROC.is_dir():
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):  # a zombie has finished: it's gone
            return False
        return start is None or start == f"{_boot_id()}:{stat[1]}"
    if start is not None and start.startswith("psutil:"):
        return process_start(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ignores_sigint(pid: int) -> bool:
    """Whether process `pid` ignores SIGINT (a job a script started with `&` does), from
    /proc/PID/status; False where that can't be read."""
    try:
        text = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (2 - 1)))  # bit signum-1; SIGINT is 2
    return False

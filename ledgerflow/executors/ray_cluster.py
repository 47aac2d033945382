"""Which Ray runtime a run uses, chosen on purpose, and reached (or refused) in seconds.

- No address (neither `address=` nor `RAY_ADDRESS`): a private local runtime for this process,
  always (`ray.init(address="local")`). Ray's own default would join whatever cluster was
  started last on the host (its `ray_current_cluster` record), another user's included, and
  hang when that cluster is gone.
- An address (`host:port`, `ray://host:port`, or `auto` for the cluster Ray's record names):
  that cluster, joined on purpose. It is checked with a TCP connect first, so a cluster that is
  gone fails in seconds with one line naming the address, not after Ray's minute of retries.

A private runtime runs with Ray's token authentication on, set the way Ray documents for local
runtimes (`RAY_AUTH_MODE=token`: Ray makes the token), so Ray has nothing to warn about. A
cluster joined on purpose keeps the user's own settings, except the warm runtime `lineage ray
up` keeps for this home (see `warm.py`), which is known to use a token.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import attrs

from ledgerflow.errors import RayClusterError

CONNECT_TIMEOUT_S = 3.0
_AUTH_MODE = "RAY_AUTH_MODE"


@attrs.frozen
class Cluster:
    """The runtime a run uses: `address` None for a private local one; `source` says who chose it."""

    address: str | None
    source: str  # "private" | "address=" | "RAY_ADDRESS" | "this process"

    @property
    def description(self) -> str:
        """In words, for the record (`ExecutionStarted.environment["ray"]`) and for errors."""
        if self.address is None:
            return "a private local Ray runtime" if self.source == "private" else "this process's Ray runtime"
        return f"the Ray cluster at {self.address} (from {self.source})"


def choose(address: str | None) -> Cluster:
    """The runtime `address` (else `RAY_ADDRESS`) names; a private local one when neither does.

    >>> choose(None).source in ("private", "RAY_ADDRESS")
    True
    >>> choose("10.0.0.5:6379").description
    'the Ray cluster at 10.0.0.5:6379 (from address=)'
    """
    if address:
        return Cluster(address, "address=")
    if os.environ.get("RAY_ADDRESS"):
        return Cluster(os.environ["RAY_ADDRESS"], "RAY_ADDRESS")
    return Cluster(None, "private")


def connect(cluster: Cluster, options: dict[str, Any]) -> bool:
    """Start or join `cluster`; True when this call started a runtime (the caller shuts it down)."""
    import ray

    if cluster.address is None:
        _token_auth()
        ray.init(address="local", **options)
        return True
    target = reachable(cluster)
    if _is_warm_runtime(target):
        _token_auth()
    try:
        ray.init(address=cluster.address, **options)
    except Exception as e:  # ConnectionError, ray.exceptions.AuthenticationError, RuntimeError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ("; if it uses token authentication (`lineage ray up` does), set RAY_AUTH_MODE=token"
                if os.environ.get(_AUTH_MODE) != "token" else "")
        raise RayClusterError(f"cannot join {cluster.description}: {type(e).__name__}: {first}{hint}") from None
    return False


def _token_auth() -> None:
    """Token authentication on, as Ray turns it on for a new local runtime, but said explicitly
    (`RAY_AUTH_MODE=token`), so Ray does not warn about it on every run. A mode the user set stays."""
    if os.environ.get(_AUTH_MODE) is not None:
        return
    try:
        # Ray's own switch: it sets the variable and refreshes the configuration Ray read at import
        # (setting the variable alone leaves this process on the old mode and its GCS on the new).
        from ray._private.authentication.authentication_token_setup import _enable_token_auth
    except ImportError:  # a Ray without token authentication (before 2.52): nothing to turn on
        return
    _enable_token_auth()


def reachable(cluster: Cluster) -> str:
    """The host:port of a cluster joined on purpose, checked with a TCP connect (seconds at most);
    RayClusterError naming the address when it cannot be reached."""
    target = _bootstrap(cluster)
    _reachable(cluster, target)
    return target


def _bootstrap(cluster: Cluster) -> str:
    """The host:port to check: `auto` read from Ray's record of the last cluster started here."""
    address = cluster.address
    if address.startswith("ray://"):
        return address[len("ray://"):]
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address

        try:
            found = canonicalize_bootstrap_address("auto")
        except Exception as e:  # Ray raises ConnectionError when its record names no cluster
            found = None
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        else:
            why = "Ray's record names none"
        if not found:
            raise RayClusterError(f"address=auto: no running Ray cluster found on this host ({why}); start one "
                                  "(`lineage ray up`, or `ray start --head`), or leave out the address for a private "
                                  "local runtime")
        return found
    return address


def _reachable(cluster: Cluster, target: str) -> None:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except ValueError:
        raise RayClusterError(f"{cluster.description}: {target!r} is not host:port") from None
    except OSError as e:
        raise RayClusterError(f"cannot reach {cluster.description} ({target}): {e.strerror or e}; is it running? "
                              "Leave out the address (unset RAY_ADDRESS) for a private local runtime") from None


def _is_warm_runtime(target: str) -> bool:
    from ledgerflow.executors import warm

    return warm.is_warm_address(target)

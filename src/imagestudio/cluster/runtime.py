"""Starting or joining the Ray runtime the head's queue uses, and what Ray must be told first.

Two ways in (``cluster.address``):

* null — a private runtime on this machine with ``cluster.local_workers`` worker slots, on 127.0.0.1
  only: Ray otherwise advertises the machine's LAN address even when given loopback, which
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` prevents (at the cost of refusing other nodes, which a private
  runtime does not want). Its auth token is random and lives only in this process's environment, so
  nothing is written to the user's home.
* ``HOST:PORT`` — a cluster started with ``imagestudio worker --head``; Ray's token auth is on, and the
  token comes from ``cluster.token_file`` (or Ray's own default place).

Both read environment variables Ray consults when it is imported, so this module sets them before the
first ``import ray`` in the process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagestudio.config import ClusterSettings

log = logging.getLogger(__name__)

#: Ray namespace of the studio's actors (so two studios on one cluster do not see each other's).
NAMESPACE = "imagestudio"
SLOT = "imagestudio_worker"


def ray_environment(cluster: ClusterSettings, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables Ray needs for ``cluster`` (only those not already set)."""
    env = os.environ if environ is None else environ
    wanted: dict[str, str] = {"RAY_AUTH_MODE": "token"}
    if cluster.address is None:
        wanted["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        if not env.get("RAY_AUTH_TOKEN"):
            wanted["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    elif cluster.token_file is not None:
        wanted["RAY_AUTH_TOKEN_PATH"] = str(cluster.token_file)
    return {key: value for key, value in wanted.items() if key not in env}


def connect(cluster: ClusterSettings) -> None:
    """Start the private runtime or join ``cluster.address`` (no-op if this process already did)."""
    os.environ.update(ray_environment(cluster))
    import ray

    if ray.is_initialized():
        return
    with _signals_kept():
        _init(ray, cluster)


def _init(ray: Any, cluster: ClusterSettings) -> None:
    if cluster.address is None:
        slots = cluster.local_workers
        # Private means its own: without an address, ray.init() joins RAY_ADDRESS or the last cluster
        # `ray start` ran on this machine (Ray keeps its address in <tmp>/ray/ray_current_cluster long
        # after it stopped), and then refuses num_cpus. "local" always starts a new runtime, and
        # RAY_ADDRESS would override even that.
        if os.environ.pop("RAY_ADDRESS", None):
            log.info("RAY_ADDRESS is ignored: cluster.address is null, so the studio runs its own Ray")
        ray.init(
            address="local",
            num_cpus=max(1, slots),
            resources={SLOT: slots},
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            namespace=NAMESPACE,
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False, configure_logging=False)


@contextlib.contextmanager
def _signals_kept() -> Iterator[None]:
    """Keep this process's SIGTERM handling through ``ray.init()``.

    ``ray.init()`` replaces the handler with ``sys.exit`` and installs its C++ crash handler, which turns
    SIGTERM into an abort (signal 6, a core dump, no shutdown): the server would stop with its jobs left
    ``running`` and Ray's processes orphaned. Re-registering the handler that was there (the web server's
    graceful stop) puts Python's own signal handling back, so the queue cancels and records its jobs and
    shuts Ray down. Signal handlers can only be set from the main thread; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


def disconnect() -> None:
    """Leave the runtime (and stop it, when this process started it)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()

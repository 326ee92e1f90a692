"""Separate "machines" on one host: Linux network namespaces joined by a bridge, for the cluster suite.

Each box is a network namespace with one veth "cable" into a switch namespace that holds a bridge; the
test process itself is one more machine on that switch (a veth in the root namespace), so it reaches the
head's HTTP port as a client on the LAN would. Addresses come from 198.18.0.0/24 (RFC 2544's benchmarking
range, never a real LAN's), only connected routes exist (no default route, no forwarding), so nothing can
leave these namespaces. Pulling a box's cable is ``ip link set … down`` on its switch port.

Everything made here is undone by :meth:`NetLab.close`: the processes started in the namespaces (found
with ``ip netns pids``, so Ray's own daemons too), then the namespaces, which takes their veths along.
Needs root (CAP_NET_ADMIN) and ``ip``; :func:`unavailable` says why not, for the skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.cluster.wire import Wire, open_tap

SUBNET = "198.18.0"
CLIENT_IP = f"{SUBNET}.254"
#: Every command here is bounded: a wedged ``ip`` must fail the test, not hang CI.
CMD_TIMEOUT_S = 20.0


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN); run the cluster suite as root"
    probe = f"isprobe{os.getpid() % 100000}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, timeout=CMD_TIMEOUT_S
    )
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=CMD_TIMEOUT_S)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass
class Box:
    """One machine: its namespace, address, switch port and the processes started in it."""

    name: str
    netns: str
    ip: str
    port: str  # its cable's end in the switch namespace
    home: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Its cable, when it is a user-space one with adjustable latency and loss (``add_box(wire=True)``).
    wire: Wire | None = None


class NetLab:
    """A switch and any number of boxes on it; a context manager that always cleans up."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tag = f"is{os.getpid() % 100000}"
        self.switch = f"{self.tag}-sw"
        self.boxes: dict[str, Box] = {}
        self._client_link = f"{self.tag}c"
        self._next_ip = 1

    def __enter__(self) -> NetLab:
        Path("/tmp/ray").mkdir(exist_ok=True)  # the mount point of each box's own
        try:
            _ip("netns", "add", self.switch)
            self._sw("link", "add", "br0", "type", "bridge")
            self._sw("link", "set", "br0", "up")
            # The test process's own cable: it is a client machine on the LAN.
            _ip(
                "link",
                "add",
                self._client_link,
                "type",
                "veth",
                "peer",
                "name",
                "client",
                "netns",
                self.switch,
            )
            self._sw("link", "set", "client", "master", "br0")
            self._sw("link", "set", "client", "up")
            _ip("addr", "add", f"{CLIENT_IP}/24", "dev", self._client_link)
            _ip("link", "set", self._client_link, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sw(self, *args: str) -> None:
        _ip("-n", self.switch, *args)

    def add_box(self, name: str, *, wire: bool = False) -> Box:
        netns, port = f"{self.tag}-{name}", f"p-{name}"[:15]
        ip = f"{SUBNET}.{self._next_ip}"
        self._next_ip += 1
        _ip("netns", "add", netns)
        box = Box(name, netns, ip, port, self.workdir / name)
        self.boxes[name] = box
        box.home.mkdir(parents=True, exist_ok=True)
        _ip("-n", netns, "link", "set", "lo", "up")
        if wire:
            # Two TAP devices made here, then moved: the descriptors stay with this process's wire.
            near, far = f"{self.tag}{self._next_ip}a", f"{self.tag}{self._next_ip}b"
            box.wire = Wire(open_tap(near), open_tap(far))
            _ip("link", "set", near, "netns", netns)
            _ip("-n", netns, "link", "set", near, "name", "eth0")
            _ip("link", "set", far, "netns", self.switch)
            self._sw("link", "set", far, "name", port)
        else:
            _ip(
                "-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.switch
            )
        _ip("-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        self._sw("link", "set", port, "master", "br0")
        self._sw("link", "set", port, "up")
        return box

    def cable(self, name: str, *, up: bool) -> None:
        """Plug a box's cable in or pull it out (its switch port goes up or down)."""
        self._sw("link", "set", self.boxes[name].port, "up" if up else "down")

    def spawn(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None, log: str = "out"
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` on box ``name`` (its HOME is the box's own folder); output goes to a log file."""
        box = self.boxes[name]
        # The interpreter's own bin first: `ray` and `imagestudio` as an activated venv finds them.
        bindir = str(Path(sys.executable).parent)
        path = os.pathsep.join([bindir, os.environ.get("PATH", "")])
        # Nothing of the test process's own Ray settings (a loopback-only runtime, its token) leaks in;
        # no usage report is even attempted (there is no route out anyway).
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
        full_env = {
            **inherited,
            "PATH": path,
            "HOME": str(box.home),
            "RAY_USAGE_STATS_ENABLED": "0",
            **(env or {}),
        }
        with (box.home / f"{log}.log").open("ab") as out:
            process = subprocess.Popen(
                ["ip", "netns", "exec", box.netns, "sh", "-c", _OWN_TMP, str(box.home / "tmp-ray"), *argv],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        box.processes.append(process)
        return process

    def log(self, name: str, log: str = "out") -> str:
        path = self.boxes[name].home / f"{log}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def pids(self, name: str) -> list[int]:
        """Every process living in box ``name``'s namespace (ours and the daemons they started)."""
        done = _ip("netns", "pids", self.boxes[name].netns, check=False)
        return [int(pid) for pid in done.stdout.split() if pid.isdigit()]

    def stop_box(self, name: str, timeout: float = 30.0) -> None:
        """Stop everything on a box: SIGTERM, then SIGKILL what is left after ``timeout``."""
        box = self.boxes[name]
        for process in box.processes:
            if process.poll() is None:
                _signal(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            self.pids(name) or any(p.poll() is None for p in box.processes)
        ):
            time.sleep(0.2)
        for pid in self.pids(name):
            _signal(pid, signal.SIGKILL)
        for process in box.processes:
            if process.poll() is None:
                _signal(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        box.processes.clear()
        # Killed daemons leave the namespace empty within moments; wait for that (bounded).
        deadline = time.monotonic() + 10
        while self.pids(name) and time.monotonic() < deadline:
            time.sleep(0.1)

    def close(self) -> None:
        for name in list(self.boxes):
            try:
                self.stop_box(name, timeout=10)
            finally:
                _ip("netns", "del", self.boxes[name].netns, check=False)
                wire = self.boxes[name].wire
                if wire is not None:
                    wire.close()
        self.boxes.clear()
        _ip("link", "del", self._client_link, check=False)
        _ip("netns", "del", self.switch, check=False)


#: Each box gets its own /tmp/ray, as a separate machine has: Ray keeps its sockets and session files
#: there, and two nodes sharing it collide (the second raylet cannot bind its object store's socket).
#: ``ip netns exec`` runs the command in a mount namespace of its own, so the bind mount is private to
#: this process tree and leaves the host's /tmp/ray alone.
_OWN_TMP = 'mkdir -p "$0" && mount --bind "$0" /tmp/ray && exec "$@"'


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

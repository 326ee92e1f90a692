"""A cable with latency and loss, in user space, for kernels without ``sch_netem`` (``tc qdisc … netem``).

Two TAP devices, one moved into a box's namespace (its ``eth0``) and one into the switch namespace (a
bridge port), and a thread that copies every Ethernet frame from one to the other after ``delay_s``,
dropping each with probability ``loss``, in both directions. Ray's TCP connections then see real
latency and real retransmissions, as over a poor LAN. With ``delay_s=0`` and ``loss=0`` it is a plain
cable (a little slower than a veth pair). Everything is bounded: the thread stops on :meth:`close`.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import itertools
import os
import random
import select
import struct
import threading
import time

_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI = 0x0002, 0x1000


def open_tap(name: str) -> int:
    """A new TAP device ``name`` in this process's namespace; it lives as long as the descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), _IFF_TAP | _IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


class Wire:
    """Copies frames between two TAP descriptors with a delay and a loss rate (both adjustable live)."""

    def __init__(self, a: int, b: int, *, seed: int = 0) -> None:
        self._fds = (a, b)
        self.delay_s = 0.0
        self.loss = 0.0
        self.sent = self.dropped = 0
        self._random = random.Random(seed)
        self._due: list[tuple[float, int, int, bytes]] = []
        self._order = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imagestudio-test-wire", daemon=True)
        self._thread.start()

    def set(self, *, delay_s: float, loss: float) -> None:
        self.delay_s, self.loss = delay_s, loss

    def _run(self) -> None:
        a, b = self._fds
        other = {a: b, b: a}
        while not self._stop.is_set():
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                _, _, fd, frame = heapq.heappop(self._due)
                try:
                    os.write(fd, frame)
                    self.sent += 1
                except OSError:  # the device is down (a pulled cable): the frame is lost
                    self.dropped += 1
            wait = min(0.05, max(0.0, self._due[0][0] - now)) if self._due else 0.05
            ready, _, _ = select.select([a, b], [], [], wait)
            for fd in ready:
                for _ in range(64):
                    try:
                        frame = os.read(fd, 65536)
                    except (BlockingIOError, OSError):
                        break
                    if self.loss and self._random.random() < self.loss:
                        self.dropped += 1
                        continue
                    due = time.monotonic() + self.delay_s
                    heapq.heappush(self._due, (due, next(self._order), other[fd], frame))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)

"""A studio on a LAN of namespaces: the head (Ray head node + ``imagestudio serve``) and GPU boxes.

Shared by the namespace suite and ``benchmarks.cluster_scaling``; every process is started with the
commands a team types (``imagestudio worker --head``, ``imagestudio serve``, ``imagestudio worker
--connect``), and the test process talks to the studio over the LAN with the API key.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.cluster import netlab
from tests.helpers import wait_until

RAY_PORT, HTTP_PORT = 6379, 7860
WAIT = 240.0


def cli() -> str:
    return str(Path(sys.executable).parent / "imagestudio")


#: How often a wait here looks again: each look asks processes in other namespaces.
EVERY_S = 0.2


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code in (200, 503)
    except httpx.HTTPError:
        return False


@dataclass
class StudioLan:
    lab: netlab.NetLab
    token: Path
    head_config: Path
    box_config: Path
    key: str
    #: Environment every box's worker gets (e.g. the tiny models' test-only step wait).
    box_env: dict[str, str] = field(default_factory=dict)
    serve: Any = None

    @property
    def head_ip(self) -> str:
        return self.lab.boxes["head"].ip

    @property
    def url(self) -> str:
        return f"http://{self.head_ip}:{HTTP_PORT}"

    def client(self, key: str | None = "") -> httpx.Client:
        key = self.key if key == "" else key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def workers(self) -> list[dict[str, Any]]:
        with self.client() as http:
            return list(http.get("/api/system").json()["workers"])

    def start_serve(self) -> None:
        self.serve = self.lab.spawn("head", [cli(), "serve", "--config", str(self.head_config)], log="serve")
        wait_until(lambda: _answers(self.url), WAIT, "the studio to answer on the LAN", EVERY_S)

    def stop_serve(self) -> None:
        if self.serve is not None:
            self.serve.terminate()
            self.serve.wait(WAIT)
            self.serve = None

    def add_box(
        self,
        name: str,
        *extra: str,
        env: dict[str, str] | None = None,
        joined: bool = True,
        wire: bool = False,
    ) -> Any:
        """Start ``imagestudio worker --connect`` on a new box; with ``joined``, wait for its node."""
        box = self.lab.add_box(name, wire=wire)
        return self.start_box(name, *extra, env=env, joined=joined, box_ip=box.ip)

    def start_box(
        self, name: str, *extra: str, env: dict[str, str] | None = None, joined: bool = True, box_ip: str = ""
    ) -> Any:
        argv = [cli(), "worker", "--connect", f"{self.head_ip}:{RAY_PORT}"]
        argv += ["--node-ip", box_ip or self.lab.boxes[name].ip, *extra]
        process = self.lab.spawn(name, argv, env={**self.box_env, **(env or {})}, log="worker")
        if joined:
            wait_until(
                lambda: "Ray runtime started" in self.lab.log(name, "worker"),
                WAIT,
                f"box {name} to join",
                EVERY_S,
            )
        return process

    def box_args(self) -> tuple[str, ...]:
        return ("--token-file", str(self.token), "--config", str(self.box_config))


@contextmanager
def studio_lan(
    work: Path,
    models_dir: Path,
    *,
    dead_after_s: float | None = None,
    box_env: dict[str, str] | None = None,
    max_queue: int = 40,
) -> Iterator[StudioLan]:
    """A head with its Ray node and token, ready for boxes and the studio (neither started yet)."""
    with netlab.NetLab(work) as lab:
        head = lab.add_box("head")
        argv = [cli(), "worker", "--head", "--node-ip", head.ip, "--port", str(RAY_PORT), "--workers", "0"]
        if dead_after_s is not None:
            argv += ["--dead-after", f"{dead_after_s:g}"]
        lab.spawn("head", argv, log="ray")
        wait_until(
            lambda: "Ray runtime started" in lab.log("head", "ray"), WAIT, "the head's Ray node", EVERY_S
        )
        token = work / "auth_token"  # "a copy of the head's token", carried to each box
        shutil.copy(head.home / ".ray" / "auth_token", token)
        key = secrets.token_urlsafe(24)
        head_config = work / "head.yaml"
        head_config.write_text(
            f"storage:\n  models_dir: {models_dir}\n  outputs_dir: {head.home / 'outputs'}\n"
            f"  history_db: {head.home / 'history.sqlite3'}\n"
            f"server:\n  host: {head.ip}\n  port: {HTTP_PORT}\n  api_key: {key}\n  max_queue: {max_queue}\n"
            f"  max_queued_per_client: {max_queue}\n"
            "generation:\n  default_width: 64\n  default_height: 64\n  default_num_inference_steps: 2\n"
            f"cluster:\n  backend: ray\n  address: '{head.ip}:{RAY_PORT}'\n  token_file: {token}\n"
            "  poll_s: 0.5\n  worker_wait_s: 120\n",
            encoding="utf-8",
        )
        box_config = work / "box.yaml"
        box_config.write_text(f"storage:\n  models_dir: {models_dir}\n", encoding="utf-8")
        yield StudioLan(lab, token, head_config, box_config, key, dict(box_env or {}))

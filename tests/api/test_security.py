"""Authentication, bind rules, CORS and the serve command's refusals."""

from __future__ import annotations

import logging
import socket
import subprocess
import time

import openai
import pytest

from imagestudio.api.security import check_bind, is_loopback
from imagestudio.config import load_settings
from imagestudio.errors import ConfigError
from tests.api.conftest import assert_error_shape
from tests.conftest import PYTHON, cli_env

KEY = "s3cret-key-for-tests"


def test_a_configured_key_guards_every_route_but_healthz(serve) -> None:
    live = serve(server={"api_key": KEY})
    good = {"Authorization": f"Bearer {KEY}"}
    with live.client() as http:
        for method, path in [
            ("GET", "/v1/models"),
            ("POST", "/v1/images/generations"),
            ("GET", "/api/history"),
            ("GET", "/api/system"),
            ("GET", "/api/jobs/whatever"),
            ("GET", "/openapi.json"),
            ("GET", "/no/such/route"),
        ]:
            missing = http.request(method, path)
            assert "missing API key" in assert_error_shape(missing, 401)["message"], path
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = http.request(method, path, headers={"Authorization": "Bearer nope"})
            assert "incorrect API key" in assert_error_shape(wrong, 401)["message"], path
        assert http.get("/healthz").status_code == 200
        assert http.get("/v1/models", headers=good).status_code == 200
        assert http.get("/v1/models", headers={"Authorization": f"bearer {KEY}"}).status_code == 200
        assert http.get("/v1/models", headers={"Authorization": KEY}).status_code == 401
        schema = http.get("/openapi.json", headers=good).json()
        assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{live.url}/v1", api_key="wrong", max_retries=0).models.list()
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=KEY, max_retries=0, timeout=120)
    result = client.images.generate(model="tiny-z-image", prompt="кот", size="64x64", response_format="url")
    with live.client() as http:
        assert http.get(result.data[0].url).status_code == 401
        assert http.get(result.data[0].url, headers=good).status_code == 200


def test_api_key_from_the_environment_wins(config_file, monkeypatch) -> None:
    monkeypatch.setenv("IMAGESTUDIO_API_KEY", "  from-env  ")
    settings = load_settings(config_file, overrides={"server": {"api_key": "from-file"}})
    assert settings.server.api_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings.server)  # a secret, not printed
    monkeypatch.delenv("IMAGESTUDIO_API_KEY")
    assert load_settings(config_file).server.api_key is None
    with pytest.raises(ConfigError, match="api_key"):
        load_settings(config_file, overrides={"server": {"api_key": "  "}})


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_bind_rules(caplog) -> None:
    check_bind("127.0.0.1", None, insecure=False)
    check_bind("0.0.0.0", "key", insecure=False)
    with pytest.raises(ConfigError, match="without an API key"):
        check_bind("0.0.0.0", None, insecure=False)
    with caplog.at_level(logging.WARNING):
        check_bind("0.0.0.0", None, insecure=True)
    assert "SECURITY WARNING" in caplog.text


def run_serve(*args: str, config, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [PYTHON, "-m", "imagestudio", "serve", *args, "--config", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, env=cli_env(**env), timeout=60, check=False)


def test_serve_refuses_a_public_address_without_a_key(config_file) -> None:
    started = time.monotonic()
    done = run_serve("--host", "0.0.0.0", "--port", "1", config=config_file)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "refusing to listen on 0.0.0.0 without an API key" in lines[0]
    assert time.monotonic() - started < 30  # refused up front, not after loading anything


def test_serve_reports_a_taken_port_in_one_line(config_file) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve("--port", str(port), config=config_file)
    assert done.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_cors_is_off_unless_configured(serve) -> None:
    preflight = {"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"}
    closed = serve()
    with closed.client() as http:
        assert (
            "access-control-allow-origin"
            not in http.get("/v1/models", headers={"Origin": "http://ui.example"}).headers
        )
        assert "access-control-allow-origin" not in http.options("/v1/models", headers=preflight).headers
    opened = serve(server={"cors_origins": ["http://ui.example"], "api_key": KEY})
    with opened.client() as http:
        answer = http.options("/v1/images/generations", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "http://ui.example"
        allowed = http.get(
            "/v1/models", headers={"Origin": "http://ui.example", "Authorization": f"Bearer {KEY}"}
        )
        assert allowed.headers["access-control-allow-origin"] == "http://ui.example"
        other = http.get(
            "/v1/models", headers={"Origin": "http://evil.example", "Authorization": f"Bearer {KEY}"}
        )
        assert "access-control-allow-origin" not in other.headers

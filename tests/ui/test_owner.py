"""The owner cookie that files a browser's page jobs across reloads (ui/owner.py), set by a real server."""

from __future__ import annotations

import httpx

from imagestudio.ui.owner import COOKIE, owner_cookie


def test_owner_cookie_reads_only_a_well_formed_value() -> None:
    good = "A" * 10 + "b_-" + "9" * 11
    assert owner_cookie(f"other=1; {COOKIE}={good}") == good
    assert owner_cookie(None) is None
    assert owner_cookie(f"{COOKIE}=short") is None
    assert owner_cookie(f"{COOKIE}=" + "x" * 65) is None
    assert owner_cookie(f'{COOKIE}="a;b"') is None


def test_the_page_sets_the_cookie_once_httponly_and_strict(studio_server) -> None:
    first = httpx.get(studio_server.url + "/")
    header = first.headers["set-cookie"]
    assert header.startswith(f"{COOKIE}=") and "HttpOnly" in header and "SameSite=Strict" in header
    value = first.cookies[COOKIE]
    assert owner_cookie(f"{COOKIE}={value}") == value
    again = httpx.get(studio_server.url + "/", cookies={COOKIE: value})
    assert "set-cookie" not in again.headers

"""The login page: how a browser gets into a server with an API key, and what programs still see."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from imagestudio.api.security import local_path
from imagestudio.ui.login_page import browser_language
from tests.api.conftest import assert_error_shape

KEY = "s3cret-key-for-tests"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def session_cookies(response) -> list[str]:
    return [value for name, value in response.headers.multi_items() if name == "set-cookie"]


def test_a_browser_is_sent_to_the_login_page_and_programs_still_get_401(serve) -> None:
    live = serve(server={"api_key": KEY})
    with live.client() as http:
        page = http.get("/", headers=HTML)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2F"
        deep = http.get("/some/page?tab=history&x=кот", headers=HTML)
        assert deep.status_code == 303
        login = http.get(deep.headers["location"], headers=HTML)
        assert login.status_code == 200
        assert 'name="next" value="/some/page?tab=history&amp;x=%D0%BA%D0%BE%D1%82"' in login.text

        # Programs: no text/html in Accept, or an API path, or not a GET → the JSON 401 as before.
        for method, path, headers in [
            ("GET", "/", {}),
            ("GET", "/v1/models", {}),
            ("GET", "/v1/models", HTML),
            ("GET", "/api/history", HTML),
            ("POST", "/", HTML),
        ]:
            answer = http.request(method, path, headers=headers)
            assert "missing API key" in assert_error_shape(answer, 401)["message"], (method, path)
            assert answer.headers["www-authenticate"] == "Bearer"
        assert http.get("/healthz").status_code == 200


def test_login_page_speaks_the_browsers_language_or_the_chosen_one(serve) -> None:
    live = serve(server={"api_key": KEY})
    with live.client() as http:
        russian = http.get("/login", headers={**HTML, "Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})
        assert russian.status_code == 200
        assert russian.headers["content-type"].startswith("text/html")
        assert '<html lang="ru">' in russian.text and "Ключ API" in russian.text
        assert russian.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in russian.headers["content-security-policy"]
        english = http.get("/login?lang=en", headers={"Accept-Language": "ru-RU"})
        assert '<html lang="en">' in english.text and "API key" in english.text
        assert "Ключ" not in english.text


def test_a_wrong_key_shows_the_form_again_with_a_translated_error(serve) -> None:
    live = serve(server={"api_key": KEY})
    with live.client() as http:
        wrong = http.post(
            "/login",
            data={"key": "not-the-key", "next": "/", "lang": ""},
            headers={**HTML, "Accept-Language": "ru"},
        )
        assert wrong.status_code == 401
        assert "Traceback" not in wrong.text
        assert re.search(r'id="login-error"[^>]*>Неверный ключ', wrong.text)
        assert 'id="login-form"' in wrong.text and 'aria-invalid="true"' in wrong.text
        assert not session_cookies(wrong)
        # A language picked on the page (the form's "lang") wins over the browser's.
        empty = http.post("/login", data={"key": "  ", "lang": "en"}, headers={"Accept-Language": "ru"})
        assert empty.status_code == 401 and "Enter the key first" in empty.text
        # Only "key" is missing, nothing else either: still the page, not a 422 or a traceback.
        bare = http.post("/login", content=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert bare.status_code == 401 and 'id="login-form"' in bare.text


def test_the_right_key_sets_a_strict_httponly_cookie_that_opens_everything_until_logout(serve) -> None:
    live = serve(server={"api_key": KEY})
    with live.client() as http:
        signed = http.post("/login", data={"key": KEY, "next": "/v1/models?x=1"}, headers=HTML)
        assert signed.status_code == 303
        assert signed.headers["location"] == "/v1/models?x=1"
        (cookie,) = session_cookies(signed)
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes
        assert "secure" not in attributes
        name, _, value = attributes[0].partition("=")
        assert name == f"imagestudio-session-{urlsplit(live.url).port}"
        # An HMAC of the key, not the key.
        assert KEY.lower() not in value and re.fullmatch(r"[0-9a-f]{64}", value)

        assert http.get("/v1/models").status_code == 200
        assert http.get("/api/history").status_code == 200
        assert http.get("/login?next=/api/history", headers=HTML).headers["location"] == "/api/history"

        out = http.post("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/login"
        (cleared,) = session_cookies(out)
        assert "max-age=0" in cleared.lower()
        assert "missing API key" in assert_error_shape(http.get("/v1/models"), 401)["message"]
        assert http.get("/", headers=HTML).status_code == 303

        # The page's language is kept for the login page that follows.
        http.post("/login", data={"key": KEY})
        assert http.get("/v1/models").status_code == 200
        assert http.post("/logout?lang=ru").headers["location"] == "/login?lang=ru"
        assert http.get("/v1/models").status_code == 401


def test_logout_is_a_post_from_this_server_only(serve) -> None:
    """Another site can make a browser follow a GET link (an <img>, a redirect) or post a form: neither
    logs it out. Only a POST with this server's origin, or from a program (no Origin), does."""
    live = serve(server={"api_key": KEY})
    with live.client() as http:
        http.post("/login", data={"key": KEY})
        foreign = {"Referer": "https://evil.example/page", **HTML}
        by_get = http.get("/logout", headers=foreign)
        assert by_get.status_code == 405 and by_get.headers["allow"] == "POST"
        assert not session_cookies(by_get)
        assert http.get("/logout").status_code == 405
        cross_site = http.post("/logout", headers={"Origin": "https://evil.example"})
        assert assert_error_shape(cross_site, 403)["code"] == "foreign_origin"
        assert http.get("/v1/models").status_code == 200  # still signed in
        own = http.post("/logout", headers={"Origin": live.url})
        assert own.status_code == 303 and own.headers["location"] == "/login"
        assert http.get("/v1/models").status_code == 401


def test_a_damaged_sessions_file_is_moved_aside_and_login_works(serve) -> None:
    """Garbage in ``sessions.sqlite`` (at start, or written over it while the server runs) costs the
    browsers their sessions, nothing else: the page, the login and cookie requests keep answering."""
    live = serve(server={"api_key": KEY})
    folder = live.services.settings.history_db.parent
    sessions_file = folder / "sessions.sqlite"
    sessions_file.write_bytes(b"this is not a database" * 200)
    name = f"imagestudio-session-{urlsplit(live.url).port}"
    with live.client() as http:
        stale = {"Cookie": f"{name}={'ab' * 32}"}
        assert http.get("/v1/models", headers=stale).status_code == 401
        assert http.get("/", headers={**HTML, **stale}).status_code == 303
        assert http.get("/login", headers=HTML).status_code == 200
        signed = http.post("/login", data={"key": KEY}, headers=HTML)
        assert signed.status_code == 303 and session_cookies(signed)
        assert http.get("/v1/models").status_code == 200
        [moved] = folder.glob("sessions.sqlite.damaged-*")
        assert moved.read_bytes().startswith(b"this is not a database")

        # Damaged while running: the session is lost, the login works again.
        sessions_file.write_bytes(b"garbage again" * 500)
        assert http.get("/v1/models").status_code == 401
        assert http.post("/login", data={"key": KEY}).status_code == 303
        assert http.get("/v1/models").status_code == 200
        assert http.post("/logout").status_code == 303
    assert len(list(folder.glob("sessions.sqlite.damaged-*"))) == 2


def test_a_forged_or_stale_cookie_is_refused(serve) -> None:
    old = serve(server={"api_key": KEY})
    new = serve(server={"api_key": KEY + "-new"})
    with old.client() as http:
        signed = http.post("/login", data={"key": KEY})
        value = signed.cookies[f"imagestudio-session-{urlsplit(old.url).port}"]
    # The same cookie on a server whose key changed: refused, the browser must log in again.
    name = f"imagestudio-session-{urlsplit(new.url).port}"

    def carrying(cookie: str) -> dict[str, str]:
        return {"Cookie": f"{name}={cookie}"}

    with new.client() as http:
        assert http.get("/v1/models", headers=carrying(value)).status_code == 401
        assert http.get("/", headers={**HTML, **carrying(value)}).status_code == 303
        assert http.get("/v1/models", headers=carrying(KEY + "-new")).status_code == 401  # not the raw key
        assert http.get("/v1/models", headers=carrying(value[:-1] + "x")).status_code == 401
        good = http.post("/login", data={"key": KEY + "-new"}).cookies[name]
    with new.client() as fresh:
        assert fresh.get("/v1/models", headers=carrying(good)).status_code == 200
        # Another app's odd cookie on the same host does not hide a valid one.
        odd = f'other="a b"; broken; {name}={good}; x=1'
        assert fresh.get("/v1/models", headers={"Cookie": odd}).status_code == 200


def test_a_copied_cookie_stops_working_after_logout(serve) -> None:
    live = serve(server={"api_key": KEY})
    name = f"imagestudio-session-{urlsplit(live.url).port}"
    with live.client() as browser:
        token = browser.post("/login", data={"key": KEY}).cookies[name]
        copied = {"Cookie": f"{name}={token}"}
        with live.client() as thief:
            assert thief.get("/v1/models", headers=copied).status_code == 200
            assert browser.post("/logout").status_code == 303
            # Revoked on the server, not just cleared in the browser that logged out.
            assert (
                "missing API key"
                in assert_error_shape(thief.get("/v1/models", headers=copied), 401)["message"]
            )
            assert thief.get("/", headers={**HTML, **copied}).status_code == 303
        # A new login is a new session id; the old one stays dead.
        again = browser.post("/login", data={"key": KEY}).cookies[name]
        assert again != token
        assert browser.get("/v1/models").status_code == 200


def test_an_expired_session_is_refused(serve) -> None:
    import time

    # The sessions' clock, moved by the test instead of waiting for it.
    now = [time.time()]
    live = serve(server={"api_key": KEY, "session_ttl_hours": 1.5 / 3600}, clock=lambda: now[0])  # 1.5 s
    name = f"imagestudio-session-{urlsplit(live.url).port}"
    with live.client() as browser:
        signed = browser.post("/login", data={"key": KEY})
        (cookie,) = session_cookies(signed)
        assert "max-age=1" in cookie.lower()
        token = signed.cookies[name]
        assert browser.get("/v1/models").status_code == 200
        now[0] += 2.0
    with live.client() as late:
        expired = late.get("/v1/models", headers={"Cookie": f"{name}={token}"})
        assert "missing API key" in assert_error_shape(expired, 401)["message"]


def test_the_server_keeps_no_usable_cookie(serve) -> None:
    live = serve(server={"api_key": KEY})
    name = f"imagestudio-session-{urlsplit(live.url).port}"
    with live.client() as browser:
        token = browser.post("/login", data={"key": KEY}).cookies[name]
    store = live.services.settings.history_db.parent / "sessions.sqlite"
    raw = store.read_bytes()
    # Only a hash of the id is stored: a copy of the file opens nothing.
    assert token.encode() not in raw and KEY.encode() not in raw


OFFSITE = [
    "//evil.example",
    "//evil.example/path",
    "https://evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "evil.example",
    "/ok\r\nSet-Cookie: x=1",
    "",
]


def test_next_never_leaves_the_server(serve) -> None:
    live = serve(server={"api_key": KEY})
    with live.client() as http:
        for target in OFFSITE:
            answer = http.post("/login", data={"key": KEY, "next": target})
            assert answer.status_code == 303, target
            assert answer.headers["location"] == "/", target
            assert len(session_cookies(answer)) == 1, target
            # Already signed in, the form's GET redirects at once: the same rule.
            again = http.get("/login", params={"next": target}, headers=HTML)
            assert again.status_code == 303 and again.headers["location"] == "/", target
    with live.client() as anonymous:
        form = anonymous.get("/login", params={"next": "//evil.example"}, headers=HTML)
        assert form.status_code == 200 and 'name="next" value="/"' in form.text


def test_local_path_keeps_paths_on_this_server() -> None:
    assert local_path("/") == "/"
    assert local_path("/?lang=ru") == "/?lang=ru"
    assert local_path("/gradio_api/file=/tmp/a.png") == "/gradio_api/file=/tmp/a.png"
    assert local_path("//evil.example") == "/"
    assert local_path("/\\evil.example") == "/"
    assert local_path(None) == "/"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("en-GB,en;q=0.9,ru;q=0.8", "en"),
        ("de-DE,de;q=0.9,ru;q=0.5,en;q=0.4", "ru"),
        ("en;q=0.2, ru;q=0.8", "ru"),
        ("ru;q=0, en", "en"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
        ("ru;q=abc, en;q=0.1", "en"),
    ],
)
def test_browser_language(header: str | None, expected: str) -> None:
    assert browser_language(header) == expected

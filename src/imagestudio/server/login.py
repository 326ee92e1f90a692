"""``/login`` and ``/logout``: how a browser gets into a server that has an API key.

A browser cannot send ``Authorization: Bearer``, so it types the key once into a form; the answer is a
session cookie that :class:`imagestudio.api.security.BearerAuth` accepts in place of the header (for
the studio's pages and for everything they load: Gradio's XHR, event streams and files). The cookie is
a random id of a server-side session (:mod:`imagestudio.api.sessions`): it expires after
``server.session_ttl_hours`` and ``/logout`` revokes it, so a copied cookie stops working too.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from imagestudio.api.security import LOGIN_PATH, LOGOUT_PATH, local_path, session_cookie, session_cookie_name
from imagestudio.ui.login_page import browser_language, chosen_language, render_login_page
from imagestudio.ui.texts import Texts

if TYPE_CHECKING:
    from imagestudio.api.sessions import SessionStore

#: Headers for every login response: never cached, never framed, never named in another site's
#: Referer ("same-origin": the form's own POST keeps its real Origin for the Origin check).
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def login_router(api_key: str, sessions: SessionStore) -> APIRouter:
    """The routes, with ``api_key`` held in their closure (it never reaches ``app.state``)."""
    texts = Texts.load()
    expected_key = api_key.encode()
    router = APIRouter(include_in_schema=False)

    def signed_in(request: Request) -> bool:
        return sessions.is_valid(session_cookie(request.scope))

    def page(
        request: Request, lang: str | None, next_path: str, status: int, error_key: str | None = None
    ) -> HTMLResponse:
        picked = chosen_language(lang)
        rendered = render_login_page(
            texts,
            picked or browser_language(request.headers.get("accept-language")),
            next_path,
            error_key=error_key,
            remember_language=picked is not None,
            # Only on a plain GET: a page that shows an error must not reload itself away.
            follow_saved_language=picked is None and request.method == "GET",
        )
        headers = {**_PAGE_HEADERS, "Content-Security-Policy": rendered.content_security_policy}
        return HTMLResponse(rendered.html, status_code=status, headers=headers)

    @router.get(LOGIN_PATH)
    async def login_form(request: Request) -> Response:
        next_path = local_path(request.query_params.get("next"))
        if signed_in(request):
            return RedirectResponse(next_path, status_code=303, headers={"Cache-Control": "no-store"})
        return page(request, request.query_params.get("lang"), next_path, 200)

    @router.post(LOGIN_PATH)
    async def login(request: Request) -> Response:
        # A plain urlencoded form: parsed here rather than through FastAPI's Form, which needs
        # python-multipart and answers malformed input with a 422 instead of the page.
        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)

        def field(name: str) -> str:
            return form.get(name, [""])[0]

        next_path = local_path(field("next"))
        typed = field("key").strip()
        if not typed:
            return page(request, field("lang"), next_path, 401, "login.empty_key")
        # compare_digest: the time taken must not tell how much of a guess was right.
        if not hmac.compare_digest(typed.encode(), expected_key):
            return page(request, field("lang"), next_path, 401, "login.wrong_key")
        # A fresh id on every login: an id planted before login (session fixation) is never upgraded.
        sessions.revoke(session_cookie(request.scope))
        token = await run_in_threadpool(sessions.create)
        response = RedirectResponse(next_path, status_code=303, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            session_cookie_name(request.scope),
            token,
            max_age=int(sessions.ttl_s),
            path="/",
            httponly=True,  # page scripts never need it; an injected one cannot steal it
            samesite="strict",  # other sites cannot make the browser act signed in (CSRF)
            # Not Secure: the studio is served over plain http on 127.0.0.1 or a home LAN, where a
            # Secure cookie would never be sent back. Put TLS in front to protect it on the wire.
            secure=False,
        )
        return response

    @router.api_route(LOGOUT_PATH, methods=["GET", "POST"])
    async def logout(request: Request) -> Response:
        lang = chosen_language(request.query_params.get("lang"))
        target = LOGIN_PATH + (f"?{urlencode({'lang': lang})}" if lang else "")
        # Revoked server-side: a copy of the cookie kept elsewhere stops working too.
        await run_in_threadpool(sessions.revoke, session_cookie(request.scope))
        response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
        response.delete_cookie(session_cookie_name(request.scope), path="/", httponly=True, samesite="strict")
        return response

    return router

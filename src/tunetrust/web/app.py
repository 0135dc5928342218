"""The members' web app: one FastAPI application over the service API.

``create_app(settings)`` opens the home, mounts the pages (``web/auth.py`` for joining
and signing in, ``web/pages.py`` for what a member sees and does) and the site's own
static files, and starts an import worker (``services/jobs.py``) with the app. Pages
are server-rendered HTML that work without JavaScript; the one thing that needs a
script is the passkey ceremony (the browser's WebAuthn API).

What the server logs: method, the route's *pattern* (``/jobs/{job_id}``, never the path
a visitor typed, which may hold an invitation secret), status and time. Never a
cookie, a form field, a file name or an error's text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from tunetrust.errors import ForbiddenError, TuneTrustError
from tunetrust.settings import Settings
from tunetrust.store.home import Home, open_home
from tunetrust.web import security

HERE = Path(__file__).parent
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True
    )
)
access_log = logging.getLogger("tunetrust.web")


def _strong(text: str) -> markupsafe.Markup:
    """Text with ``<strong>…</strong>`` kept and everything else escaped."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(
        escaped.replace("&lt;strong&gt;", "<strong>").replace("&lt;/strong&gt;", "</strong>")
    )


templates.env.filters["strong"] = _strong

# Every page route and who may use it: "anyone" (no sign-in needed), "member" (the
# signed-in member, for their own things only), and for sessions signed in with an API
# token "buyer", "auditor" (auditors and stewards), "steward" or "staff" (any of them).
# tests/test_web_security.py checks this table against the app's real routes: a route
# without an entry fails the suite. The API's routes have their own: web.api.API_ACCESS.
ACCESS: dict[str, str] = {}
MAX_BODY = 64 * 1024  # any request body but an upload's


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with what every page needs: the visit, its CSRF token, the site name."""
    v = security.visit(request)
    return templates.TemplateResponse(
        request,
        template,
        {"visit": v, "csrf": v.csrf, "member": v.member, **context},
        status_code=status,
    )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _refusal(request: Request, status: int, message: str) -> Response:
    """A refusal made outside any route: problem details under /api/, else plain."""
    if _is_api(request):
        from tunetrust.web.api import problem

        return problem(status, message)
    if status >= 500:
        return PlainTextResponse(message, status_code=status)
    return JSONResponse({"detail": message}, status_code=status)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or request.url.path.endswith(
        ".json"
    )


def create_app(settings: Settings, *, worker: bool = True, home: Home | None = None) -> FastAPI:
    """The web app for the home ``settings`` name (``worker``: run imports in this process)."""
    from tunetrust.services.jobs import Worker
    from tunetrust.web import auth, console, cooperative, pages, portal, story, uploads
    from tunetrust.web.api import create_api

    home = home or open_home(settings)
    workers: list[Worker] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pages.sweep_exports(home)  # decrypted copies a killed server may have left
        if worker:
            w = Worker(home)
            w.start()
            workers.append(w)
        yield
        for w in workers:
            w.stop(timeout=10)

    app = FastAPI(
        title="TuneTrust",
        lifespan=lifespan,
        docs_url=None,  # the pages have no API explorer; /api/v1/openapi.json is the API's
        redoc_url=None,
        openapi_url=None,
    )
    app.state.home = home
    app.state.origin = settings.web_origin
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(story.router)
    app.include_router(cooperative.router)
    app.include_router(uploads.router)
    app.include_router(console.router)
    app.include_router(portal.router)
    app.mount("/api/v1", create_api(home))

    @app.middleware("http")
    async def headers_and_log(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        declared = request.headers.get("content-length", "")
        too_big = declared.isdigit() and int(declared) > MAX_BODY
        unsized = request.headers.get("transfer-encoding", "").lower() == "chunked"
        # only the upload streams; every other body is small and must say its length
        if request.url.path != "/upload" and (too_big or unsized):
            response: Response = _refusal(
                request, 413, "the request body is too large (64 KiB at most, with its length)"
            )
        else:
            try:
                response = await call_next(request)
            except Exception as error:  # logged by type only: a message may hold a value
                access_log.error("unhandled %s", type(error).__name__)
                response = _refusal(
                    request,
                    500,
                    "Something went wrong on the server; the steward can see it in the log.",
                )
        for name, value in security.HEADERS.items():
            response.headers.setdefault(name, value)
        cookie = getattr(request.state, "cookie", None)
        if cookie:
            response.set_cookie(
                security.COOKIE,
                cookie,
                httponly=True,
                secure=True,
                samesite="strict",
                path="/",
            )
        route = request.scope.get("route")
        pattern = getattr(route, "path", None)
        access_log.info(
            "%s %s %d %.1f ms",
            request.method,
            # a mounted app's route is named with its mount (/api/v1/requests/{request_id})
            request.scope.get("root_path", "") + pattern if pattern else "(no route)",
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    @app.exception_handler(security.SignInRequired)
    async def sign_in_first(request: Request, _: Exception) -> Response:
        if _wants_json(request) or request.method != "GET":
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        return RedirectResponse("/signin", status_code=303)

    @app.exception_handler(security.StaffSignInRequired)
    async def staff_sign_in_first(request: Request, _: Exception) -> Response:
        if _wants_json(request) or request.method != "GET":
            return JSONResponse({"detail": "sign in with your API token first"}, status_code=401)
        return RedirectResponse("/staff/signin", status_code=303)

    @app.exception_handler(TuneTrustError)
    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, TuneTrustError)
        status = error.status
        message = str(error)
        hidden = isinstance(error, ForbiddenError) and not isinstance(error, security.Refused)
        if hidden and security.visit(request).member is not None:
            # a member asking for another member's things learns nothing: not even that
            # they exist (a refusal that says what to do stays a 403)
            status, message = 404, "there is nothing here"
        if _wants_json(request):
            return JSONResponse({"detail": message}, status_code=status)
        return page(request, "error.html", status=status, message=message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        message = "there is nothing here" if error.status_code == 404 else str(error.detail)
        if _is_api(request):  # a path under /api/ that no API route takes
            return _refusal(request, error.status_code, message)
        if _wants_json(request):
            return JSONResponse({"detail": message}, status_code=error.status_code)
        return page(request, "error.html", status=error.status_code, message=message)

    @app.exception_handler(RequestValidationError)
    async def bad_form(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        fields = sorted({str(e["loc"][-1]) for e in error.errors() if e.get("loc")})
        message = "this form is missing or has a wrong value in: " + ", ".join(fields)
        if _wants_json(request):
            return JSONResponse({"detail": message}, status_code=400)
        return page(request, "error.html", status=400, message=message)

    return app


__all__ = ["ACCESS", "create_app", "page", "templates"]

"""GET /dashboard: the pending-entries dashboard, static files and no build step: dashboard.js
(helpers, routing, refresh), views.js (a service's views), invocation.js (one invocation, the
audit log), start.js (wires the header, starts). The page holds no data: everything it shows
comes from the /admin JSON API, called with ``fetch`` and the operator's bearer token (kept in
the tab's sessionStorage), so the shell itself needs no token."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import Response

router = APIRouter(include_in_schema=False)
_STATIC = files("gateway") / "static"
_TYPES = {
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "invocation.js": "text/javascript; charset=utf-8",
    "start.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
_BODIES = {name: (_STATIC / name).read_bytes() for name in _TYPES}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
PATHS = ("/dashboard", "/dashboard/", *(f"/dashboard/{n}" for n in _TYPES if n != "dashboard.html"))


def _serve(name: str) -> Response:
    return Response(_BODIES[name], media_type=_TYPES[name], headers=HEADERS)


@router.get("/dashboard")
@router.get("/dashboard/")
async def page() -> Response:
    return _serve("dashboard.html")


def _static(name: str) -> None:
    @router.get(f"/dashboard/{name}")
    async def serve() -> Response:
        return _serve(name)


for _name in _TYPES:
    if _name != "dashboard.html":
        _static(_name)

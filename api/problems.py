"""Error answers as RFC 9457 problem details (``application/problem+json``).

Bad input answers 422 with every problem and its place (``file``, ``row``, ``field``), like the
CLI's messages; ids that do not exist, or belong to another tenant, answer 404 alike.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from stencil.errors import (
    ConfigError,
    ManifestError,
    NotFoundError,
    Problem,
    StencilError,
    StorageError,
)

MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Spending cap reached",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    411: "Length required",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class ApiProblem(Exception):
    """An answer other than success, raised from a route and turned into a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        problems: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problems = problems
        self.headers = headers or {}


def not_found(request_id: str) -> ApiProblem:
    return ApiProblem(404, f"no request or item has the id {request_id!r}")


def problem_body(
    status: int, detail: str, problems: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if problems is not None:
        body["problems"] = problems
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    problems: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, problems),
        status_code=status,
        headers=headers,
        media_type=MEDIA_TYPE,
    )


def place(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "row": problem.row,
        "field": problem.field,
        "message": problem.message,
    }


def manifest_response(exc: ManifestError) -> JSONResponse:
    count = len(exc.problems)
    detail = f"{count} problem{'s' if count != 1 else ''} in the manifest; nothing was submitted"
    return problem_response(422, detail, problems=[place(p) for p in exc.problems])


def install(app: FastAPI) -> None:
    """Turn every error into a problem document (never a traceback)."""

    @app.exception_handler(ApiProblem)
    async def _api(_: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, problems=exc.problems, headers=exc.headers)

    @app.exception_handler(ManifestError)
    async def _manifest(_: Request, exc: ManifestError) -> JSONResponse:
        return manifest_response(exc)

    @app.exception_handler(NotFoundError)
    async def _missing(_: Request, exc: NotFoundError) -> JSONResponse:
        return problem_response(404, str(exc))

    @app.exception_handler(StencilError)
    async def _stencil(_: Request, exc: StencilError) -> JSONResponse:
        if isinstance(exc, StorageError | ConfigError):
            return problem_response(503, str(exc).splitlines()[0][:300])
        status = 422 if exc.exit_code == 2 else 500
        return problem_response(status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "file": "request",
                "row": None,
                "field": ".".join(str(part) for part in error.get("loc", ())),
                "message": str(error.get("msg", "is not valid")),
            }
            for error in exc.errors()
        ]
        return problem_response(422, "the request is not valid", problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(500, f"unexpected error ({type(exc).__name__})")

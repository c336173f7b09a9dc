"""Provider-shaped error bodies: what an SDK expects to parse from a 4xx.

Every bad request is answered in the shape of the API the client called, naming the
request field at fault, so the client raises its usual exception (``BadRequestError``,
``NotFoundError``, ``RateLimitError``) instead of choking on an unexpected body:

* OpenAI: ``{"error": {"message", "type", "param", "code"}}``;
* Azure: the OpenAI shape for validation errors, ``{"error": {"code", "message"}}`` for
  404 (deployment) and 429 (``code`` is the string ``"429"``);
* Anthropic: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Api = Literal["openai", "azure", "anthropic"]

# Anthropic's error types by HTTP status (docs: platform.claude.com/docs/en/api/errors).
_ANTHROPIC_TYPE = {400: "invalid_request_error", 401: "authentication_error",
                   404: "not_found_error", 405: "invalid_request_error",
                   413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                   529: "overloaded_error"}


@dataclass(eq=False)
class ApiError(Exception):
    """A request the mock refuses, with what the error body needs.

    Attributes
    ----------
    status : HTTP status (400, 404, 413, ...).
    message : one line naming the request field and the rule it breaks.
    param : the request field (dotted path, e.g. ``messages[2].content``) or None.
    code : OpenAI's ``code`` (e.g. ``model_not_found``), Azure's ``code`` when shaped so.
    kind : OpenAI's ``type`` when not the status's own: a 429 names the limit that
        refused, ``"tokens"`` or ``"requests"`` (its ``code`` is ``rate_limit_exceeded``).
    """

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    kind: str | None = None

    def __str__(self) -> str:
        return self.message


def bad(param: str, rule: str) -> ApiError:
    """A 400 naming ``param``: ``"<param>: <rule>"``."""
    return ApiError(400, f"{param}: {rule}", param=param)


def error_body(api: Api, err: ApiError, request_id: str) -> dict[str, Any]:
    """The JSON body for ``err`` in ``api``'s shape."""
    if api == "anthropic":
        return {"type": "error",
                "error": {"type": _ANTHROPIC_TYPE.get(err.status, "api_error"),
                          "message": err.message},
                "request_id": request_id}
    if api == "azure" and err.status in (404, 429) and err.code is not None:
        return {"error": {"code": err.code, "message": err.message}}
    kind = err.kind or {413: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
        err.status, "invalid_request_error" if err.status < 500 else "server_error")
    return {"error": {"message": err.message, "type": kind, "param": err.param,
                      "code": err.code}}

"""The API's routes: handlers declared by their type hints, checked with pydantic, served as ASGI.

A handler's parameters say where each value comes from: `ApiContext` (the served context),
`Request` (the client and headers), a name in the path template (a path parameter), a
pydantic model (the JSON body; optional when its default is None), `Annotated[..., HEADER]`
(a header, `last_event_id` as `Last-Event-Id`), anything else (a query parameter; an alias,
limits and a description given by `pydantic.Field`). Its return annotation (or `response`)
is the JSON answer's type, unless it returns a `Response` or a `Stream`. Every value is
checked before the handler runs: what is wrong is one 422 listing each error with its
location (`["query", "last"]`), as `HTTPValidationError` in the OpenAPI document
(`hubgate.api.openapi_doc`). An `ApiError` is its status with `{"detail": ...}`.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, get_args, get_origin, get_type_hints
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model

from hubgate.api.context import ApiContext
from hubgate.api.http11 import Message

Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[..., Awaitable[Any]]
JSON = "application/json"
UTF8_BOM = b"\xef\xbb\xbf"


class ApiError(Exception):
    """Answer `status` with `{"detail": detail}` and `headers`."""

    def __init__(self, status: int, detail: object, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def invalid(errors: Iterable[Mapping[str, Any]]) -> ApiError:
    """The 422 listing `errors` (pydantic's, their `loc` starting with where the value was)."""
    return ApiError(422, [json_safe(dict(error)) for error in errors])


def json_safe(value: object) -> object:
    """`value` as JSON can hold it: a non-finite float and anything unknown as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


@dataclass(frozen=True)
class Response:
    """An answer of the handler's own making (CSV, metrics text, a file)."""

    body: bytes
    media_type: str
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stream:
    """An answer that goes on (server-sent events): each text as it comes."""

    chunks: AsyncIterator[str]
    media_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


class Request:
    """What a handler may read of its request: the client's address and the headers."""

    def __init__(self, scope: Mapping[str, Any]) -> None:
        self.scope = scope

    @cached_property
    def headers(self) -> dict[str, str]:
        """The headers by lower-case name (the last of repeated ones)."""
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope["headers"]}

    @property
    def client_host(self) -> str | None:
        """The client's address, when known."""
        client = self.scope.get("client")
        return str(client[0]) if client else None


class _Header:
    """Marks a handler parameter as a header: `Annotated[int | None, HEADER]`."""


HEADER = _Header()


@dataclass(frozen=True)
class Route:
    """One operation: `method path` answered by `handler`."""

    method: str
    path: str
    handler: Handler
    tags: tuple[str, ...]
    token: bool
    """Always needs the token (a write); reads need it unless the site opens them."""
    responses: Mapping[int, Mapping[str, Any]]
    """The documented answers besides 200 and 422: their description (and content)."""
    response: object = None
    """The JSON answer's type when the return annotation does not say it."""
    content: Mapping[str, Any] | None = None
    """The documented 200 content when it is not (only) JSON."""
    description_200: str = "Successful Response"


class Router:
    """Routes of one tag; `token=True`: each needs the token (writes)."""

    def __init__(
        self, tag: str, *, token: bool = False, responses: Mapping[int, str] | None = None
    ) -> None:
        self.tag = tag
        self.token = token
        self.responses = {
            status: {"description": text} for status, text in (responses or {}).items()
        }
        self.routes: list[Route] = []

    def route(
        self, method: str, path: str, *, responses: Mapping[int, Mapping[str, Any]] | None = None,
        **options: Any,
    ) -> Callable[[Handler], Handler]:  # fmt: skip
        """Register the decorated handler for `method path`."""

        def register(handler: Handler) -> Handler:
            documented = {**self.responses, **(responses or {})}
            self.routes.append(
                Route(method, path, handler, (self.tag,), self.token, documented, **options)
            )
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """`route("GET", ...)`."""
        return self.route("GET", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """`route("PUT", ...)`."""
        return self.route("PUT", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """`route("POST", ...)`."""
        return self.route("POST", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """`route("DELETE", ...)`."""
        return self.route("DELETE", path, **options)


def _model_type(hint: object) -> type[BaseModel] | None:
    """The pydantic model of a body parameter (`Model` or `Model | None`)."""
    for candidate in (hint, *get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_header(hint: object) -> bool:
    return get_origin(hint) is Annotated and any(m is HEADER for m in hint.__metadata__)  # type: ignore[attr-defined]


class Endpoint:
    """A route made ready to answer: its parameters as pydantic models, its answer's type."""

    def __init__(self, route: Route, prefix: str) -> None:
        self.route = route
        self.path = prefix + route.path
        names = re.findall(r"{(\w+)}", self.path)
        self.pattern = re.compile(
            "^" + re.sub(r"{(\w+)}", lambda m: f"(?P<{m[1]}>[^/]+)", self.path) + "$"
        )
        hints = get_type_hints(route.handler, include_extras=True)
        self.takes: dict[str, str] = {}
        fields: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "header": {}}
        self.body: TypeAdapter[Any] | None = None
        self.body_required = True
        for name, parameter in inspect.signature(route.handler).parameters.items():
            hint = hints[name]
            default = ... if parameter.default is inspect.Parameter.empty else parameter.default
            if hint is ApiContext or hint is Request:
                self.takes[name] = "ctx" if hint is ApiContext else "request"
            elif name in names:
                fields["path"][name] = (hint, default)
                self.takes[name] = "path"
            elif _model_type(hint) is not None:
                self.body = TypeAdapter(hint)
                self.body_required = default is ...
                self.takes[name] = "body"
            elif _is_header(hint):
                alias = name.replace("_", "-")
                fields["header"][name] = (Annotated[hint, Field(alias=alias)], default)
                self.takes[name] = "header"
            else:
                fields["query"][name] = (hint, default)
                self.takes[name] = "query"
        self.models = {
            where: create_model(f"{route.handler.__name__}_{where}", **given)
            for where, given in fields.items()
        }
        returned: Any = route.response if route.response is not None else hints.get("return")
        self.result = None if returned in (Response, Stream) else TypeAdapter[Any](returned)
        """The JSON answer's type; None when the handler answers on its own."""

    async def answer(
        self, ctx: ApiContext, request: Request, path: Mapping[str, str], body: bytes
    ) -> object:
        """The handler's answer for this request, its values checked first."""
        given = {
            "path": path,
            "query": dict(parse_qsl(request.scope["query_string"].decode("latin-1"), True)),
            "header": request.headers,
        }
        values: dict[str, Any] = {}
        errors: list[Mapping[str, Any]] = []
        for where, model in self.models.items():
            try:
                values.update(dict(model.model_validate(given[where])))
            except ValidationError as error:
                errors += [
                    {**e, "loc": (where, *e["loc"])} for e in error.errors(include_url=False)
                ]
        if self.body is not None:
            values["body"] = self._body(body, request.headers.get("content-type"), errors)
        if errors:
            raise invalid(errors)
        arguments = {
            name: ctx if where == "ctx" else request if where == "request" else
            values["body"] if where == "body" else values[name]
            for name, where in self.takes.items()
        }  # fmt: skip
        return await self.route.handler(**arguments)

    def _body(
        self, body: bytes, content_type: str | None, errors: list[Mapping[str, Any]]
    ) -> object:
        """The JSON body checked (a UTF-8 byte order mark before it ignored, RFC 8259 8.1);
        what is wrong added to `errors`: a body not declared as JSON (`Content-Type`), and
        one that is no JSON, echoed as its text."""
        assert self.body is not None
        body = body.removeprefix(UTF8_BOM)
        if not body.strip():
            if self.body_required:
                errors.append(
                    {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
                )
            return None
        if not is_json(content_type):
            errors.append(
                {
                    "type": "content_type",
                    "loc": ("header", "content-type"),
                    "msg": f"the body is JSON: send it with Content-Type: {JSON}",
                    "input": content_type,
                }
            )
            return None
        try:
            return self.body.validate_json(body)
        except ValidationError as error:
            for e in error.errors(include_url=False):
                if isinstance(e["input"], bytes):  # the whole body: JSON that does not parse
                    e["input"] = e["input"].decode("utf-8", "replace")
                errors.append({**e, "loc": ("body", *e["loc"])})
            return None

    def encode(self, result: object) -> bytes:
        """The handler's result as the JSON answer."""
        assert self.result is not None, "a Response or Stream route answers on its own"
        return self.result.dump_json(result, by_alias=True)


def is_json(content_type: str | None) -> bool:
    """Whether a `Content-Type` header says JSON (`application/json` or `application/*+json`,
    parameters such as a charset aside)."""
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


async def send_json(
    send: Send, status: int, content: object, headers: Mapping[str, str] = {}
) -> None:
    """Answer `status` with `content` as JSON."""
    await send_body(send, status, json.dumps(content).encode(), JSON, headers)


async def send_body(
    send: Send, status: int, body: bytes, media_type: str, headers: Mapping[str, str] = {}
) -> None:
    """Answer `status` with `body`."""
    raw = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_stream(send: Send, stream: Stream) -> None:
    """Answer 200 with each of the stream's texts as it comes, until the client goes."""
    raw = [
        (b"content-type", stream.media_type.encode()),
        *((name.lower().encode(), value.encode()) for name, value in stream.headers.items()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": raw})
    async for chunk in stream.chunks:
        await send({"type": "http.response.body", "body": chunk.encode(), "more_body": True})

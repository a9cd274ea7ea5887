"""ASGI middleware: request context (ids, timing, metrics, access log), body-size limit and request timeout."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response, status_of
from app.api.security import check_read_access
from app.services.idempotency import IdempotencyStore, StoredResponse, fingerprint
from app.services.observability import Metrics, request_id_var
from app.settings import Settings
from models.errors import AeseekError, ErrorCode

access_logger = logging.getLogger("aeseek.access")
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """Text with control characters escaped, so a decoded %0A in a path cannot forge a log line."""
    return UNPRINTABLE.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Request ids made here: a random prefix per process and a counter, unique across processes and
# restarts without a random draw per request (os.urandom gives up the GIL, and on a loaded
# server the event loop then waits to get it back: uuid4 was 4-8% of its samples under load).
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count()


def _new_id_prefix() -> None:
    global _ID_PREFIX
    _ID_PREFIX = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_id_prefix)  # a forked worker must not repeat its parent's ids


def new_request_id() -> str:
    """A request id unique to this process's lifetime and, by its random prefix, across processes."""
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


# Multipart framing (boundaries, part headers) on top of the file's own bytes.
MULTIPART_OVERHEAD = 64 * 1024


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """413 for a declared Content-Length over the limit, or a streamed body that grows past it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.limit = max_bytes + MULTIPART_OVERHEAD
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        too_large = False
        forwarded = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal forwarded
            if too_large and not forwarded:
                return  # the app's own answer to the cut-off body (e.g. a parse error) is replaced by 413
            forwarded = True
            await send(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if too_large and not forwarded:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            ErrorCode.UPLOAD_TOO_LARGE,
            f"the request body is over the upload limit of {self.max_bytes} bytes (AESEEK_MAX_UPLOAD_BYTES)",
        )
        await response(scope, receive, send)


class RequestTimeout:
    """504 for a request that runs longer than the limit (activation, which re-embeds, is exempt)."""

    def __init__(self, app: ASGIApp, seconds: float, exempt_suffixes: tuple[str, ...] = ("/activate",)) -> None:
        self.app = app
        self.seconds = seconds
        self.exempt_suffixes = exempt_suffixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].endswith(self.exempt_suffixes):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            # A deadline on this task, not wait_for's extra task per request.
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if started:
                raise
            response = error_response(
                504, ErrorCode.TIMEOUT, f"the request took longer than {self.seconds:g} s (AESEEK_REQUEST_TIMEOUT_S)"
            )
            await response(scope, receive, send)


class RequestContext:
    """Request ids (X-Request-ID, echoed or made), X-Response-Time-ms, metrics and an access log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if SAFE_REQUEST_ID.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed_ms = (time.perf_counter() - started) * 1000.0
                extra = [(b"x-request-id", request_id.encode()), (b"x-response-time-ms", f"{elapsed_ms:.2f}".encode())]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            template = route_template(scope)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"  # one series, not one a name
            path = printable(scope["path"])
            self.metrics.observe_request(method, template, status, elapsed)
            access_logger.info(
                "%s %s %d %.1fms", method, path, status, elapsed * 1000.0,
                extra={"method": method, "path": path, "status": status,
                       "duration_ms": round(elapsed * 1000.0, 2)},
            )  # fmt: skip
            request_id_var.reset(token)


API_PREFIX = "/api/v1"


def route_template(scope: Scope) -> str:
    """The matched route's path template ('/api/v1/gallery/{item_id}'), so metrics do not explode per id.

    FastAPI may leave either the declared (router-relative) or the full template in scope["route"];
    every API router is included under API_PREFIX, so a relative one is completed with it.
    """
    template = getattr(scope.get("route"), "path", None)
    if template is None:
        return "unmatched"
    if scope["path"].startswith(API_PREFIX) and not template.startswith(API_PREFIX):
        return API_PREFIX + template
    return str(template)


class Idempotency:
    """Requests that carry `Idempotency-Key` on mutating POST routes run once per (caller, key).

    The first request runs to its end even when the client stops waiting (a timeout, a dropped
    connection): it is a task of its own, shielded from the request's cancellation, that stores
    its answer when done. A retry with the key gets that answer (with `Idempotency-Replayed:
    true`), or 409 while the first still runs. Only successes are stored: after a refusal or an
    error (4xx, 5xx) nothing was done, and a retry runs again (an anonymous client cannot fill the
    disk with stored 401s, nor a full queue's 429 stick to a key).
    """

    def __init__(self, app: ASGIApp, store: IdempotencyStore, paths: re.Pattern[str]) -> None:
        self.app = app
        self.store = store
        self.paths = paths
        self._running: set[asyncio.Task[StoredResponse]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        key = headers.get(b"idempotency-key")
        if key is None or scope["method"] != "POST" or not self.paths.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        caller = hashlib.sha256(headers.get(b"authorization", b"")).hexdigest()
        request = fingerprint(
            scope["method"], scope["path"], scope.get("query_string", b""), headers.get(b"content-type", b""), body
        )
        try:
            stored = self.store.claim(caller, key.decode("latin-1"), request)
        except AeseekError as error:
            await error_response(status_of(error), error.code, str(error))(scope, receive, send)
            return
        if stored is None:
            task = asyncio.create_task(self._run_once(scope, body, caller, key.decode("latin-1"), request))
            self._running.add(task)  # a strong reference while it runs, whatever the request does
            task.add_done_callback(self._running.discard)
            stored = await asyncio.shield(task)
            replayed = False
        else:
            replayed = True
        extra = [(b"idempotency-replayed", b"true")] if replayed else []
        encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers]
        await send({"type": "http.response.start", "status": stored.status, "headers": [*encoded, *extra]})
        await send({"type": "http.response.body", "body": stored.body.encode("latin-1")})

    async def _run_once(self, scope: Scope, body: bytes, caller: str, key: str, request: str) -> StoredResponse:
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        status, headers, chunks = 500, [], []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in message["headers"]]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            self.store.release(caller, key)
            raise
        response = StoredResponse(status, headers, b"".join(chunks).decode("latin-1"))
        if 200 <= status < 300:
            self.store.complete(caller, key, request, response)
        else:  # nothing was done (a refusal, a conflict, a full queue) or it failed: a retry runs again
            self.store.release(caller, key)
        return response


class ReadGate:
    """With AESEEK_REQUIRE_KEY_FOR_READS, what lies outside the API (the web page, static files, Swagger UI,
    ReDoc, the OpenAPI document, /metrics) asks for a key as the API's read routes do."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(API_PREFIX + "/"):
            authorization = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
            try:
                check_read_access(authorization, self.settings)
            except AeseekError as error:
                response = error_response(status_of(error), error.code, str(error))
                if error.code is ErrorCode.UNAUTHENTICATED:
                    response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

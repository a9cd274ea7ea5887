"""ASGI middleware: body-size limit and request timeout, both answering in the shared error format."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_response

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
            "upload_too_large",
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
                504, "timeout", f"the request took longer than {self.seconds:g} s (AESEEK_REQUEST_TIMEOUT_S)"
            )
            await response(scope, receive, send)

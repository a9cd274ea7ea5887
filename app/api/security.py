"""API keys: who may change the service (train, cancel, resume, activate) and, optionally, read it.

Keys come from `AESEEK_API_KEYS` (comma-separated) or a file named by `AESEEK_API_KEYS_FILE`
(one key per line, e.g. a Docker secret), never from the repository. A request carries one
as `Authorization: Bearer <key>`; it is compared with every configured key in constant time.

* no or malformed Authorization header -> 401 with `WWW-Authenticate: Bearer`
* a key that is not configured         -> 403
* no keys configured at all             -> mutating endpoints answer 403 with how to enable
  them, unless `AESEEK_ALLOW_OPEN_MUTATIONS=true` (development only) opens them.
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Depends, Request

from app.settings import Settings
from models.errors import AeseekError, ErrorCode


class UnauthenticatedError(AeseekError):
    """No key, or a malformed Authorization header."""

    code = ErrorCode.UNAUTHENTICATED


class ForbiddenError(AeseekError):
    """A key that is not configured."""

    code = ErrorCode.FORBIDDEN


class MutationsDisabledError(AeseekError):
    """No key is configured, so nothing that needs one is allowed."""

    code = ErrorCode.MUTATIONS_DISABLED


class ServerMisconfiguredError(AeseekError):
    """The server's key configuration cannot be read."""

    code = ErrorCode.SERVER_MISCONFIGURED


@lru_cache(maxsize=8)
def _keys_from_file(path: str, modified: float) -> tuple[str, ...]:
    lines = Path(path).read_text().splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def configured_keys(settings: Settings) -> tuple[str, ...]:
    """Every accepted key, from the environment and the keys file."""
    keys = [key.strip() for key in settings.api_keys.split(",") if key.strip()]
    if settings.api_keys_file is not None:
        path = Path(settings.api_keys_file)
        try:
            keys.extend(_keys_from_file(str(path), path.stat().st_mtime))
        except OSError as error:
            raise ServerMisconfiguredError(f"cannot read AESEEK_API_KEYS_FILE: {error}") from None
    return tuple(keys)


MIN_KEY_LENGTH = 16
# Values people copy from examples and tutorials; a server with one of them is as good as open.
WEAK_KEYS = frozenset({"change-me", "changeme", "secret", "password", "example", "test", "api-key", "apikey"})


def refuse_weak_keys(settings: Settings) -> None:
    """ServerMisconfiguredError when a configured key is short or a well-known example value."""
    weak = [key for key in configured_keys(settings) if len(key) < MIN_KEY_LENGTH or key.lower() in WEAK_KEYS]
    if weak:
        raise ServerMisconfiguredError(
            f"{len(weak)} API key(s) are too weak: keys need at least {MIN_KEY_LENGTH} characters and must not be "
            "an example value such as 'change-me'; make one with "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
        )


def _presented_key(header: str) -> str:
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise UnauthenticatedError(
            "this endpoint needs an API key: send `Authorization: Bearer <key>`",
        )
    return key.strip()


def _check(authorization: str, keys: tuple[str, ...]) -> None:
    presented = _presented_key(authorization).encode()
    # Compare with every key, without stopping early, so timing says nothing about which matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented, key.encode())
    if not matched:
        raise ForbiddenError("the API key is not valid for this server")


# The dependencies are coroutines although they never await: FastAPI runs a plain `def`
# dependency in a worker thread, a hop that cost more than the search itself on the hot path.
async def require_write_access(request: Request) -> None:
    """Dependency of every mutating endpoint."""
    settings: Settings = request.app.state.settings
    keys = configured_keys(settings)
    if not keys:
        if settings.allow_open_mutations:
            return
        raise MutationsDisabledError(
            "changing this server (training, cancelling, resuming, activating) is disabled because no API "
            "key is configured: set AESEEK_API_KEYS or AESEEK_API_KEYS_FILE and send `Authorization: "
            "Bearer <key>`, or set AESEEK_ALLOW_OPEN_MUTATIONS=true on a development machine",
        )
    _check(request.headers.get("authorization", ""), keys)


def check_read_access(authorization: str, settings: Settings) -> None:
    """Open unless AESEEK_REQUIRE_KEY_FOR_READS is set; then a configured key is needed."""
    if settings.require_key_for_reads:
        keys = configured_keys(settings)
        if not keys:
            raise MutationsDisabledError("reads require a key but no API key is configured (AESEEK_API_KEYS)")
        _check(authorization, keys)


async def require_read_access(request: Request) -> None:
    """Dependency of read endpoints (see check_read_access)."""
    check_read_access(request.headers.get("authorization", ""), request.app.state.settings)


# Marks a mutating operation in the OpenAPI document (see app/api/openapi.py).
WRITE_OPERATION: dict[str, Any] = {"security": [{"bearer": []}]}
# The keyword arguments of every mutating route: `@router.post(path, **WRITE_ROUTE, ...)`.
WRITE_ROUTE: dict[str, Any] = {"dependencies": [Depends(require_write_access)], "openapi_extra": WRITE_OPERATION}
ReadAccess = Depends(require_read_access)

"""The webhook receiver: authenticate, parse, store once, answer fast. Nothing else.

Procore delivers each event at least once and pauses *all* deliveries to an endpoint after
any non-2xx answer or a response slower than 5 s (retrying with back-off for up to 12 h,
then discarding). So the receiver does the least possible work per request: one inbox
insert, run off the event loop, bounded by a timeout. Posting to Deltek happens later, in
the Dagster sensor that reads the inbox.

Answers:
    201 {"status": "stored"}     new event stored
    200 {"status": "duplicate"}  already stored (Procore retried or re-sent it)
    202 {"status": "ignored"}    a resource the connector does not use (nothing stored;
                                 a 2xx so an event we do not care about never pauses us)
    400 {"error": ...}           not JSON / not a valid event
    401 {"error": ...}           Authorization header missing or wrong (nothing read)
    413 {"error": ...}           body larger than max_body
    503 {"error": ...}           the inbox failed or was too slow; Procore retries later
"""

from __future__ import annotations

import hmac
import logging
from functools import partial
from typing import Any, Protocol

import anyio
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from deltek_procore.webhooks.events import (
    EventError,
    WebhookEvent,
    event_from_dict,
    load_object,
    unhandled_message,
)

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/procore"
DEFAULT_MAX_BODY = 256 * 1024


class Inbox(Protocol):
    """Where events go; implemented on the state store. Must be safe to call from threads."""

    def add(self, event: WebhookEvent, raw: dict) -> bool:
        """Store the event once; True if it was new, False if its key was already stored."""
        ...


class _BodyTooLarge(Exception):
    pass


def create_app(
    inbox: Inbox,
    authorization: str | SecretStr,
    max_body: int = DEFAULT_MAX_BODY,
    *,
    unhandled_status: int = 202,
    inbox_timeout: float = 4.0,
) -> Starlette:
    """The receiver as an ASGI app: POST /webhooks/procore and GET /healthz.

    `authorization` is the exact Authorization header value configured on the Procore hook
    (`destination_headers`). `unhandled_status` is the answer for resources outside
    `RESOURCES`: keep it 2xx in production (any other status pauses Procore's deliveries).
    `inbox_timeout` bounds the store call so Procore gets an answer inside its 5 s.
    """
    secret = _secret_bytes(authorization)
    if max_body <= 0:
        raise ValueError("max_body must be positive")

    async def receive(request: Request) -> JSONResponse:
        if not _authorized(request, secret):
            logger.warning("webhook rejected: missing or wrong Authorization header")
            return _error(401, "missing or wrong Authorization header")
        try:
            body = await _read_body(request, max_body)
        except _BodyTooLarge:
            logger.warning("webhook rejected: body larger than %d bytes", max_body)
            return _error(413, f"body larger than {max_body} bytes")
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            raw = load_object(body)
            event = event_from_dict(raw)
        except EventError as exc:
            logger.warning("webhook rejected: %s", exc)
            return _error(400, str(exc))
        if not event.handled:
            return _unhandled(event, unhandled_status)
        return await _store(inbox, event, raw, inbox_timeout)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def serve(
    inbox: Inbox,
    authorization: str | SecretStr,
    host: str = "127.0.0.1",
    port: int = 8787,
    **options: Any,
) -> None:
    """Run the receiver under uvicorn until interrupted (`deltek-procore webhooks serve`).

    Extra keyword options go to `create_app` (max_body, unhandled_status, inbox_timeout).
    Put TLS in front of it (a reverse proxy): Procore only delivers to https URLs.
    """
    import uvicorn

    app = create_app(inbox, authorization, **options)
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)


# --- request steps -----------------------------------------------------------------------


def _secret_bytes(authorization: str | SecretStr) -> bytes:
    value = (
        authorization.get_secret_value() if isinstance(authorization, SecretStr) else authorization
    )
    if not isinstance(value, str) or not value.strip():
        # An empty secret would accept requests that send no header at all.
        raise ValueError("the webhook Authorization value must not be empty")
    return value.encode("utf-8")


def _authorized(request: Request, secret: bytes) -> bool:
    # Starlette decodes header bytes as latin-1; re-encoding gives back the bytes on the wire,
    # compared in constant time against the UTF-8 configured value.
    sent = request.headers.get("authorization")
    if sent is None:
        return False
    return hmac.compare_digest(sent.encode("latin-1"), secret)


async def _read_body(request: Request, max_body: int) -> bytes:
    """The body, refusing more than max_body bytes by header and by what actually arrives."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ValueError("Content-Length is not a number")
        if int(declared) > max_body:
            raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _unhandled(event: WebhookEvent, status: int) -> JSONResponse:
    message = unhandled_message(event.resource_name)
    logger.info("webhook %s ignored: %s", event.key, message)
    if 200 <= status < 300:
        return JSONResponse({"status": "ignored", "reason": message}, status_code=status)
    return _error(status, message)


async def _store(inbox: Inbox, event: WebhookEvent, raw: dict, timeout: float) -> JSONResponse:
    # Like starlette's run_in_threadpool (same anyio worker threads), but abandonable: a
    # hung database must not hold the answer past Procore's 5 s.
    call = partial(inbox.add, event, raw)
    try:
        with anyio.fail_after(timeout):
            is_new = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    except TimeoutError:
        # The insert may still finish; Procore's retry then answers "duplicate". Nothing lost.
        logger.error("webhook %s: inbox did not answer within %.1f s", event.key, timeout)
        return _error(503, "event store is slow; retry later")
    except Exception:
        logger.exception("webhook %s: inbox failed to store the event", event.key)
        return _error(503, "event store unavailable; retry later")
    if is_new:
        logger.info(
            "webhook %s stored: %s %s %d",
            event.key,
            event.resource_name,
            event.event_type,
            event.resource_id,
        )
        return JSONResponse({"status": "stored", "key": event.key}, status_code=201)
    logger.info("webhook %s duplicate", event.key)
    return JSONResponse({"status": "duplicate", "key": event.key}, status_code=200)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)

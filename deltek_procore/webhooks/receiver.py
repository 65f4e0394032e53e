"""The webhook receiver: authenticate, parse, store once, answer fast. Nothing else.

Procore delivers each event at least once and pauses *all* deliveries to an endpoint after
any non-2xx answer or a response slower than 5 s (retrying with back-off for up to 12 h,
then discarding). So the receiver does the least possible work per request: one inbox
insert, run off the event loop, bounded by a timeout. Posting to Deltek happens later, in
the Dagster sensor that reads the inbox.

Tenants: each event is stored in its tenant's inbox. ``POST /webhooks/procore/<tenant>`` takes
that tenant's events (its own Authorization value); ``POST /webhooks/procore`` (today's path)
takes the event of whichever tenant's Authorization value it carries, so a deployment of one
tenant is configured exactly as before. A path naming no tenant answers 404 and stores nothing.

Answers:
    201 {"status": "stored"}     new event stored
    200 {"status": "duplicate"}  already stored (Procore retried or re-sent it)
    202 {"status": "ignored"}    a resource the connector does not use (nothing stored;
                                 a 2xx so an event we do not care about never pauses us)
    400 {"error": ...}           not JSON / not a valid event
    401 {"error": ...}           Authorization header missing or wrong (nothing read)
    404 {"error": ...}           /webhooks/procore/<tenant> names no tenant (nothing read)
    408 {"error": ...}           the body did not arrive within body_timeout
    413 {"error": ...}           body larger than max_body
    503 {"error": ...}           the inbox failed or was too slow; Procore retries later

Slow or stalled clients cannot hold the receiver (:func:`server_config`): request headers
must arrive within ``header_timeout`` of the connection (or of the first byte of the next
request on a kept-alive one), the body within ``body_timeout`` once the headers are in, idle
kept-alive connections close after ``keep_alive``, and at most ``limit_concurrency``
connections are served at once (beyond it uvicorn answers 503). Each dropped client is
one log line, never a traceback.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import anyio
import h11
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
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
#: Procore pauses deliveries after 5 s without an answer; its own requests arrive at once.
DEFAULT_HEADER_TIMEOUT = 5.0
DEFAULT_BODY_TIMEOUT = 5.0
DEFAULT_KEEP_ALIVE = 5
#: Connections served at once. Stalled ones count until their timeout closes them, so keep
#: this well above Procore's concurrency (a few) plus what an idle scanner may hold.
DEFAULT_LIMIT_CONCURRENCY = 200
MAX_HEADER_BYTES = 16 * 1024
_CLOSE = {"Connection": "close"}


class Inbox(Protocol):
    """Where events go; implemented on the state store. Must be safe to call from threads."""

    def add(self, event: WebhookEvent, raw: dict) -> bool:
        """Store the event once; True if it was new, False if its key was already stored."""
        ...


class _BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class TenantInbox:
    """One tenant's endpoint: its name (the path segment), inbox and Authorization value."""

    name: str
    inbox: Inbox
    authorization: str | SecretStr


@dataclass(frozen=True)
class _Endpoint:
    name: str | None  # None: the single inbox of create_app(inbox, authorization)
    inbox: Inbox
    secret: bytes


def _endpoints(
    inbox: Inbox | None,
    authorization: str | SecretStr | None,
    tenants: Sequence[TenantInbox] | None,
) -> list[_Endpoint]:
    if tenants is None:
        if inbox is None or authorization is None:
            raise ValueError("create_app needs an inbox and its Authorization value, or tenants")
        return [_Endpoint(None, inbox, _secret_bytes(authorization))]
    if inbox is not None or authorization is not None:
        raise ValueError("pass either one inbox and its Authorization value, or tenants")
    if not tenants:
        raise ValueError("tenants: name at least one tenant")
    endpoints = [_Endpoint(t.name, t.inbox, _secret_bytes(t.authorization)) for t in tenants]
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise ValueError(f"tenant names must be unique: {', '.join(map(str, names))}")
    for i, one in enumerate(endpoints):
        for other in endpoints[i + 1 :]:
            if hmac.compare_digest(one.secret, other.secret):
                # today's path tells tenants apart by their value: it must be theirs alone
                raise ValueError(
                    f"tenants {one.name} and {other.name} have the same webhook Authorization "
                    "value; give each tenant its own"
                )
    return endpoints


def create_app(
    inbox: Inbox | None = None,
    authorization: str | SecretStr | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    *,
    tenants: Sequence[TenantInbox] | None = None,
    unhandled_status: int = 202,
    inbox_timeout: float = 4.0,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> Starlette:
    """The receiver as an ASGI app: POST /webhooks/procore and GET /healthz; with `tenants`
    also POST /webhooks/procore/<tenant>.

    `authorization` is the exact Authorization header value configured on the Procore hook
    (`destination_headers`); with `tenants`, each has its own (they must differ: today's path
    routes an event to the tenant whose value it carries). `unhandled_status` is the answer
    for resources outside `RESOURCES`: keep it 2xx in production (any other status pauses
    Procore's deliveries). `inbox_timeout` bounds the store call so Procore gets an answer
    inside its 5 s; `body_timeout` bounds reading the body, so a slow sender cannot hold a
    slot.
    """
    endpoints = _endpoints(inbox, authorization, tenants)
    by_name = {e.name: e for e in endpoints}
    if max_body <= 0:
        raise ValueError("max_body must be positive")
    if body_timeout <= 0:
        raise ValueError("body_timeout must be positive")

    async def receive_any(request: Request) -> JSONResponse:
        return await receive(request, _matching(request, endpoints))

    async def receive_tenant(request: Request) -> JSONResponse:
        name = request.path_params["tenant"]
        endpoint = by_name.get(name)
        if endpoint is None:
            logger.warning("webhook rejected: no tenant named %r", name[:40])
            return _error(404, f"no tenant named {name[:40]!r} receives webhooks here", close=True)
        return await receive(request, endpoint if _matching(request, [endpoint]) else None)

    async def receive(request: Request, endpoint: _Endpoint | None) -> JSONResponse:
        if endpoint is None:
            logger.warning("webhook rejected: missing or wrong Authorization header")
            return _error(401, "missing or wrong Authorization header", close=True)
        try:
            with anyio.fail_after(body_timeout):
                body = await _read_body(request, max_body)
        except _BodyTooLarge:
            logger.warning("webhook rejected: body larger than %d bytes", max_body)
            return _error(413, f"body larger than {max_body} bytes", close=True)
        except TimeoutError:
            logger.warning(
                "webhook dropped: %s did not send the body within %.1f s",
                _client(request),
                body_timeout,
            )
            return _error(408, f"body not received within {body_timeout:.1f} s", close=True)
        except ClientDisconnect:
            logger.warning("webhook dropped: %s disconnected during the body", _client(request))
            return _error(400, "client disconnected", close=True)  # nobody reads it
        except ValueError as exc:  # a Content-Length that is no number: body left unread
            return _error(400, str(exc), close=True)
        try:
            raw = load_object(body)
            event = event_from_dict(raw)
        except EventError as exc:
            logger.warning("webhook rejected: %s", exc)
            return _error(400, str(exc))
        if not event.handled:
            return _unhandled(event, unhandled_status)
        return await _store(endpoint, event, raw, inbox_timeout)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    routes = [Route(WEBHOOK_PATH, receive_any, methods=["POST"])]
    if tenants is not None:
        routes.append(Route(WEBHOOK_PATH + "/{tenant}", receive_tenant, methods=["POST"]))
    return Starlette(routes=[*routes, Route("/healthz", healthz, methods=["GET"])])


def server_config(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    keep_alive: int = DEFAULT_KEEP_ALIVE,
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY,
    log_level: str = "info",
) -> Any:
    """The uvicorn configuration the receiver runs with: h11 with a header deadline, a cap on
    header size, idle keep-alive and concurrent connections (see the module docstring)."""
    import uvicorn

    if header_timeout <= 0:
        raise ValueError("header_timeout must be positive")
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_guarded_h11(header_timeout),
        ws="none",
        lifespan="off",
        log_level=log_level,
        access_log=False,
        proxy_headers=True,
        server_header=False,
        timeout_keep_alive=keep_alive,
        limit_concurrency=limit_concurrency,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=5,
    )


def serve(
    inbox: Inbox | None,
    authorization: str | SecretStr | None,
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    keep_alive: int = DEFAULT_KEEP_ALIVE,
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY,
    **options: Any,
) -> None:
    """Run the receiver under uvicorn until interrupted (`deltek-procore webhooks serve`).

    Extra keyword options go to `create_app` (tenants, max_body, unhandled_status,
    inbox_timeout, body_timeout); with ``tenants=`` pass None for inbox and authorization. Put TLS in front of it (a reverse proxy): Procore only delivers to https
    URLs.
    """
    import uvicorn

    app = create_app(inbox, authorization, **options)
    config = server_config(
        app,
        host,
        port,
        header_timeout=header_timeout,
        keep_alive=keep_alive,
        limit_concurrency=limit_concurrency,
    )
    uvicorn.Server(config).run()


def _guarded_h11(header_timeout: float) -> type:
    """uvicorn's h11 protocol, closing connections whose request headers do not arrive within
    `header_timeout` (uvicorn itself has no such deadline: a client sending one header byte
    at a time would hold its connection for ever)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _header_timer: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
                self._arm_header_timer()  # (part of) the next request's headers: deadline on
            else:
                self._disarm_header_timer()  # headers complete: the app's body_timeout rules

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            if self._header_timer is None:  # a trickle of bytes does not extend it
                self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            logger.warning(
                "webhook dropped: %s did not send request headers within %.1f s",
                _peer(self.client),
                header_timeout,
            )
            try:
                self.conn.send(h11.ConnectionClosed())
            except h11.LocalProtocolError:
                pass
            self.transport.close()

    return GuardedH11Protocol


# --- request steps -----------------------------------------------------------------------


def _secret_bytes(authorization: str | SecretStr) -> bytes:
    value = (
        authorization.get_secret_value() if isinstance(authorization, SecretStr) else authorization
    )
    if not isinstance(value, str) or not value.strip():
        # An empty secret would accept requests that send no header at all.
        raise ValueError("the webhook Authorization value must not be empty")
    return value.encode("utf-8")


def _matching(request: Request, endpoints: Sequence[_Endpoint]) -> _Endpoint | None:
    """The endpoint whose Authorization value the request carries, else None. Every value is
    compared, in constant time, so the answer's timing says nothing about which one is near."""
    # Starlette decodes header bytes as latin-1; re-encoding gives back the bytes on the wire,
    # compared in constant time against the UTF-8 configured value.
    sent = request.headers.get("authorization")
    if sent is None:
        return None
    wire = sent.encode("latin-1")
    found = None
    for endpoint in endpoints:
        if hmac.compare_digest(wire, endpoint.secret):
            found = endpoint
    return found


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


async def _store(
    endpoint: _Endpoint, event: WebhookEvent, raw: dict, timeout: float
) -> JSONResponse:
    # Like starlette's run_in_threadpool (same anyio worker threads), but abandonable: a
    # hung database must not hold the answer past Procore's 5 s.
    call = partial(endpoint.inbox.add, event, raw)
    extra = {} if endpoint.name is None else {"tenant": endpoint.name}
    where = "" if endpoint.name is None else f" (tenant {endpoint.name})"
    try:
        with anyio.fail_after(timeout):
            is_new = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    except TimeoutError:
        # The insert may still finish; Procore's retry then answers "duplicate". Nothing lost.
        logger.error("webhook %s%s: inbox did not answer within %.1f s", event.key, where, timeout)
        return _error(503, "event store is slow; retry later")
    except Exception:
        logger.exception("webhook %s%s: inbox failed to store the event", event.key, where)
        return _error(503, "event store unavailable; retry later")
    if is_new:
        logger.info(
            "webhook %s stored%s: %s %s %d",
            event.key,
            where,
            event.resource_name,
            event.event_type,
            event.resource_id,
        )
        return JSONResponse({"status": "stored", "key": event.key, **extra}, status_code=201)
    logger.info("webhook %s duplicate%s", event.key, where)
    return JSONResponse({"status": "duplicate", "key": event.key, **extra}, status_code=200)


def _error(status: int, message: str, *, close: bool = False) -> JSONResponse:
    """`close` when the body may be unread: the connection is not reused."""
    return JSONResponse({"error": message}, status_code=status, headers=_CLOSE if close else None)


def _client(request: Request) -> str:
    return _peer((request.client.host, request.client.port) if request.client else None)


def _peer(client: tuple[str, int] | None) -> str:
    return f"client {client[0]}:{client[1]}" if client else "a client"

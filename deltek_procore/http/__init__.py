"""The HTTP layer both API clients stand on (requests + urllib3, nothing hand-rolled twice).

- `retry`: urllib3 `Retry` with bounded, jittered back-off and the server's Retry-After,
  chosen per request by `RetryingAdapter` (reads, token grants, writes);
- `auth`: `BearerTokenAuth`, a requests `AuthBase` that renews ahead of expiry and
  re-sends once after a 401; each API subclasses it with its token flow;
- `paging`: the Procore (page/Link) and Deltek (pageSize/page, q.maxrows) paginators;
- `text`: error-body parsing, Retry-After, `to_decimal`;
- `secrets`: scrubbing of every secret, raw, URL-encoded and base64.
"""

from .auth import BearerTokenAuth, Token
from .paging import LinkPaginator, Page, PageSizePaginator, PagingIgnored
from .retry import Backoff, BackoffRetry, RetryHooks, RetryingAdapter, never_sent, read_retry
from .secrets import Scrubber, scrub
from .text import looks_html, parse_error_body, retry_after_seconds, to_decimal

__all__ = [
    "Backoff",
    "BackoffRetry",
    "BearerTokenAuth",
    "LinkPaginator",
    "Page",
    "PageSizePaginator",
    "PagingIgnored",
    "RetryHooks",
    "RetryingAdapter",
    "Scrubber",
    "Token",
    "looks_html",
    "never_sent",
    "parse_error_body",
    "read_retry",
    "retry_after_seconds",
    "scrub",
    "to_decimal",
]

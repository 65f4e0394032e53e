"""Paginators: reading a whole listing once, whatever the server does with paging.

`LinkPaginator` (Procore, page/per_page): a `Link` header is the authority (its
rel="next", via requests' `resp.links`; a Link without next marks the last page).
Without a Link, a full page may have a successor: ask for it; an empty or short page
is the last. A page that only repeats rows already seen (a server that ignores `page`)
ends the listing. `Total` never ends it: a Total lower than the truth must not lose rows.

`PageSizePaginator` (Deltek, pageSize/page): pages until a short page. Where the
server answers 500 to `limit` (DataEntry, PSALedger) it also sends `q.maxrows`, set to
the rows needed so far, which is right whether the server applies it per page or before
paging; a server that ignores `page` (the first row repeats) is re-read whole when it
honours q.maxrows, else reported instead of silently truncated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Page:
    """One answer of a listing: its rows and what its headers say about the next one."""

    items: list[Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    next_url: str | None = None  # rel="next" of the Link header, if any
    has_link: bool = False  # a Link header came (with or without next)


def record_key(raw: Any) -> str:
    """What makes two listed rows the same row: the id, else the whole row."""
    if isinstance(raw, Mapping) and raw.get("id") is not None:
        return f"id:{raw['id']}"
    return "row:" + json.dumps(raw, sort_keys=True, default=str)


def _positive(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def announced_total(headers: Mapping[str, str]) -> int | None:
    """The listing's `Total` header as a count (0 included), None when absent or not a number."""
    value = headers.get("Total") if headers else None
    try:
        number = int(str(value).strip()) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number >= 0 else None


def next_page(page: Page, number: int, per_page: int) -> int | None:
    """Which page to read after page `number`, or None when it was the last."""
    if not page.items:
        return None
    if page.has_link:
        if not page.next_url:
            return None
        wanted = parse_qs(urlsplit(page.next_url).query).get("page")
        target = _positive(wanted[0]) if wanted else None
        return target if target is not None and target > number else number + 1
    capped = _positive(page.headers.get("Per-Page"))
    full = min(per_page, capped) if capped else per_page
    return number + 1 if len(page.items) >= full else None


@dataclass
class LinkPaginator:
    """Every row of a Procore listing once. `fetch(page, per_page)` reads one page.

    With `wanted` (the record keys an id filter asked for), only those rows are
    yielded (a server that ignores the filter costs calls, not correctness) and the
    read ends once all came. `repeated` (optional) is called when a page of repeats
    ends the listing. `counted` (optional) is called at the end of a whole listing with
    the rows read and the `Total` its first page announced (None without one): Procore's
    own count, read from another header than the paging, to compare with.
    """

    fetch: Callable[[int, int], Page]
    per_page: int
    wanted: set[str] | None = None
    repeated: Callable[[], None] | None = None
    counted: Callable[[int, int | None], None] | None = None

    def __iter__(self) -> Iterator[Any]:
        seen: set[str] = set()
        number = 1
        total: int | None = None
        while True:
            page = self.fetch(number, self.per_page)
            if number == 1:
                total = announced_total(page.headers)
            fresh = []
            for item in page.items:
                key = record_key(item)
                if key not in seen:
                    seen.add(key)
                    fresh.append(item)
            if page.items and not fresh:
                if self.repeated is not None:
                    self.repeated()
                break
            yield from (item for item in fresh if self._asked(item))
            if self.wanted is not None and self.wanted <= seen:
                return  # an id read stops early: no whole-listing count to compare
            following = next_page(page, number, self.per_page)
            if following is None:
                break
            number = following
        if self.counted is not None and self.wanted is None:
            self.counted(len(seen), total)

    def _asked(self, item: Any) -> bool:
        if self.wanted is None or not isinstance(item, Mapping) or item.get("id") is None:
            return True
        return record_key(item) in self.wanted


class PagingIgnored(Exception):
    """The server ignores paging and q.maxrows: reading on would truncate the list."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        super().__init__(f"the server ignores paging and returned only the first {rows} rows")


@dataclass
class PageSizePaginator:
    """Every row of a Deltek list. `fetch(params)` reads one page with these parameters."""

    fetch: Callable[[list[tuple[str, object]]], list[dict]]
    size: int
    maxrows: bool = False  # DataEntry / PSALedger: send q.maxrows, never limit

    def params(self, page: int) -> list[tuple[str, object]]:
        params: list[tuple[str, object]] = [("pageSize", self.size), ("page", page)]
        if self.maxrows:
            params.append(("q.maxrows", self.size * page))
        return params

    def read(self) -> list[dict]:
        rows: list[dict] = []
        page = 1
        while True:
            batch = self.fetch(self.params(page))
            if page > 1 and batch and rows and batch[0] == rows[0]:
                if len(batch) <= self.size:
                    raise PagingIgnored(len(batch))
                rows = batch  # page ignored, q.maxrows honoured: this is rows 1..n
                if len(batch) < self.size * page:
                    return rows
            else:
                rows.extend(batch)
                if len(batch) < self.size:
                    return rows
            page += 1


def wanted_ids(params: Sequence[tuple[str, Any]]) -> set[str] | None:
    """The record keys an id filter asks for (`filters[id]=1,2` or `filters[id][]=1`)."""
    ids = [
        part.strip()
        for key, value in params
        if key in ("filters[id]", "filters[id][]")
        for part in str(value).split(",")
        if part.strip()
    ]
    return {f"id:{i}" for i in ids} if ids else None

"""Vantagepoint `filterHash` query parameters, encoded so any value matches exactly.

Vantagepoint reads PHP-style indexed parameters (`filterHash[0][name]=Vendor&...`).
An invoice number may hold `"`, `&`, `#`, `%`, `+`, spaces or non-ASCII text, so every
key and value is percent-encoded with nothing left "safe" (a space becomes `%20`,
never `+`, which a strict decoder would read back as a literal plus).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

# Above this many characters a GET is sent as a form POST with `dvp-postAsGet: true`
# (gateways and IIS start refusing long URLs somewhere past 2 000 characters).
MAX_URL_LENGTH = 2000

Param = tuple[str, str]


@dataclass(frozen=True)
class Filter:
    """One filterHash condition; `opp` as Vantagepoint spells it (`=`, `!=`, `>=`, `like`...)."""

    name: str
    value: object
    opp: str = "="
    condition: str = "AND"
    type: str | None = None  # "datetime", "dropdown" where Vantagepoint wants a hint
    tablename: str | None = None  # e.g. "PR" for project columns


def _text(value: object) -> str:
    """None is an empty value (how Vantagepoint spells "blank"); everything else its str()."""
    return "" if value is None else str(value)


def filter_params(filters: Iterable[Filter] | None) -> list[Param]:
    """filterHash[i][name|value|opp|condition|seq(|type|tablename)] pairs, in order."""
    params: list[Param] = []
    for index, flt in enumerate(filters or ()):
        prefix = f"filterHash[{index}]"
        params.append((f"{prefix}[name]", flt.name))
        params.append((f"{prefix}[value]", _text(flt.value)))
        params.append((f"{prefix}[opp]", flt.opp))
        params.append((f"{prefix}[condition]", flt.condition))
        params.append((f"{prefix}[seq]", str(index + 1)))
        if flt.type:
            params.append((f"{prefix}[type]", flt.type))
        if flt.tablename:
            params.append((f"{prefix}[tablename]", flt.tablename))
    return params


def encode_params(params: Sequence[tuple[str, object]]) -> str:
    """A query string with every reserved character percent-encoded (UTF-8)."""
    return "&".join(
        f"{quote(str(key), safe='')}={quote(_text(value), safe='')}" for key, value in params
    )


def needs_post_as_get(url: str, query: str, limit: int = MAX_URL_LENGTH) -> bool:
    """True when `url?query` is too long to send as a GET."""
    return len(url) + 1 + len(query) > limit


def matches(row: dict, filters: Iterable[Filter]) -> bool:
    """Client-side check of equality filters, for servers that ignore filterHash.

    Compares like SQL Server's default collation does: case-insensitive and blind to
    trailing spaces, so a row the server would match is never dropped here. Filters with
    other operators, and any set containing an OR, are left to the server.
    """
    filters = list(filters)
    if any(flt.condition.upper() == "OR" for flt in filters):
        return True
    for flt in filters:
        if flt.opp not in ("=", "eq"):
            continue
        if _fold(row.get(flt.name)) != _fold(flt.value):
            return False
    return True


def _fold(value: object) -> str:
    return _text(value).strip().casefold()

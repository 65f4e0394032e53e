"""Deltek Vantagepoint REST client."""

from .client import (
    DeltekClient,
    DeltekSettings,
    DeltekStats,
    as_rows,
    decode_post_result,
    to_decimal,
)
from .errors import DeltekAmbiguousError, DeltekAuthError, DeltekError, parse_error_body
from .filters import Filter, filter_params

__all__ = [
    "DeltekAmbiguousError",
    "DeltekAuthError",
    "DeltekClient",
    "DeltekError",
    "DeltekSettings",
    "DeltekStats",
    "Filter",
    "as_rows",
    "decode_post_result",
    "filter_params",
    "parse_error_body",
    "to_decimal",
]

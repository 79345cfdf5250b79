"""Path and query parameters, each bounded by the same pattern as the body field it names.

A name or id the API looks up is validated before it reaches the database, so a NUL byte or an
overlong value is a 422 naming the parameter (``path.job_id``), never a driver error.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from api.schemas import CURSOR, DNS_LABEL, LABEL_VALUE, TOKEN_ID

TenantPath = Annotated[str, Path(min_length=1, max_length=56, pattern=DNS_LABEL.pattern)]
ObjectPath = Annotated[str, Path(min_length=1, max_length=63, pattern=DNS_LABEL.pattern)]
UserPath = Annotated[str, Path(min_length=1, max_length=63, pattern=LABEL_VALUE.pattern)]
# Any DNS label: a well-formed id that names no job is a 404, not a 422.
JobIdPath = Annotated[str, Path(min_length=1, max_length=63, pattern=DNS_LABEL.pattern)]
TokenIdPath = Annotated[str, Path(min_length=1, max_length=16, pattern=TOKEN_ID)]
CursorQuery = Annotated[str | None, Query(max_length=200, pattern=CURSOR)]
TenantQuery = Annotated[str | None, Query(min_length=1, max_length=56, pattern=DNS_LABEL.pattern)]
UserQuery = Annotated[str | None, Query(min_length=1, max_length=63, pattern=LABEL_VALUE.pattern)]
ActionQuery = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z]+(\.[a-z]+)*$")
]
"""An audit action or its dotted prefix (``tenant``, ``tenant.quota``)."""
JobIdQuery = Annotated[str | None, Query(min_length=1, max_length=63, pattern=DNS_LABEL.pattern)]

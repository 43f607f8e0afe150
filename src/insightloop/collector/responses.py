"""The JSON bodies the collector answers with.

Success: ``{"success": true}``, plus ``"rejected": [{"index", "kind", "field", "reason"}]``
when some events of the request were kept as rejections. Failure: ``{"success": false,
"code": ..., "message": ...}`` (the Segment SDKs read ``code`` and ``message``), with
``rejected`` or ``kind``/``field`` when events or the body broke the spec.
"""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from insightloop.collector.ingest import Rejected

_JSON = "application/json"
_SUCCESS = b'{"success":true}'


class _Answer(msgspec.Struct, omit_defaults=True):
    success: bool
    code: str | None = None
    message: str | None = None
    kind: str | None = None
    field: str | None = None
    rejected: list[Rejected] | None = None


_encode = msgspec.json.Encoder().encode


def ok(rejected: list[Rejected]) -> Response:
    content = _encode(_Answer(True, rejected=rejected)) if rejected else _SUCCESS
    return Response(content, 200, media_type=_JSON)


def failed(
    status: int,
    code: str,
    message: str,
    *,
    kind: str | None = None,
    field: str | None = None,
    rejected: list[Rejected] | None = None,
    retry_after: int | None = None,
) -> Response:
    body = _encode(_Answer(False, code, message, kind, field, rejected))
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return Response(body, status, headers=headers, media_type=_JSON)


def json(data: object, status: int = 200) -> Response:
    return Response(_encode(data), status, media_type=_JSON)

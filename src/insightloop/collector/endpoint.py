"""``POST /v1/<type>``: one request of the Segment HTTP Tracking API, from its bytes to the
durable log and the answer.

The order keeps refusals cheap: back-pressure first (nothing is read), then the header's
write key, then the body under its cap, then the envelope, then each event. A request is
answered 200 (or 400 for bodies and events that break the spec, which are kept as
rejections all the same) only after its log record is durable.
"""

from __future__ import annotations

import time

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from insightloop.collected import encode_batch
from insightloop.collector import responses
from insightloop.collector.auth import NotBasicAuth, WriteKeys, basic_auth_user
from insightloop.collector.body import BodyTooLarge, BodyUnreadable, UnsupportedEncoding, read_body
from insightloop.collector.envelope import Refused, parse_batch, parse_single
from insightloop.collector.ingest import Collected, collect, refused
from insightloop.collector.metrics import CollectorMetrics
from insightloop.collector.pressure import LagMonitor
from insightloop.collector.writer import Backpressure, LogUnavailable, LogWriter
from insightloop.config import CollectorConfig
from insightloop.segment.message import Problem
from insightloop.types import FailureKind

#: ``/v1/<name>`` → the endpoint it is (``batch``, or the message type it implies).
ENDPOINTS = {
    "batch": "batch",
    "b": "batch",
    "import": "batch",
    "track": "track",
    "t": "track",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "identify": "identify",
    "i": "identify",
    "group": "group",
    "g": "group",
    "alias": "alias",
    "a": "alias",
}
_NO_KEY = "no write key: send it as the basic-auth user name, or as `writeKey` in the body"
_CLIENT_CLOSED = 499


class _Answered(Exception):
    """A step that has decided the answer early (a refusal)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class IngestEndpoint:
    def __init__(
        self,
        config: CollectorConfig,
        keys: WriteKeys,
        writer: LogWriter,
        lag: LagMonitor,
        metrics: CollectorMetrics,
    ) -> None:
        self._config = config
        self._keys = keys
        self._writer = writer
        self._lag = lag
        self._metrics = metrics

    async def handle(self, request: Request) -> Response:
        endpoint = ENDPOINTS.get(request.path_params["kind"])
        if endpoint is None:
            self._metrics.request("unknown", 404)
            return responses.failed(404, "not_found", f"no such endpoint: {request.url.path}")
        try:
            response = await self._ingest(request, endpoint)
        except _Answered as answered:
            response = answered.response
        except ClientDisconnect:
            response = Response(status_code=_CLIENT_CLOSED)
        self._metrics.request(endpoint, response.status_code)
        return response

    async def _ingest(self, request: Request, endpoint: str) -> Response:
        if self._lag.overloaded:
            return self._busy(f"the log is {self._lag.lag_records} records behind its consumer")
        header_source = self._header_source(request.headers.get("authorization"))
        body = await self._read(request, endpoint, header_source)
        received_at_us = time.time_ns() // 1000
        config = self._config
        implied_type = None if endpoint == "batch" else endpoint
        if implied_type is None:
            parsed = parse_batch(body, config.max_nesting_depth)
        else:
            parsed = parse_single(body, config.max_event_bytes, config.max_nesting_depth)
        source = header_source or self._body_source(parsed.write_key)
        if isinstance(parsed, Refused):
            return await self._refuse(parsed.problem, body, source, received_at_us)
        collected = collect(
            parsed, source, received_at_us, implied_type, config.max_event_bytes, config.max_nesting_depth
        )
        return await self._accept(collected, implied_type, len(body))

    def _header_source(self, header: str | None) -> str | None:
        """The source of the header's write key; None without a header; 401 for a bad one."""
        if header is None:
            return None
        try:
            source = self._keys.source(basic_auth_user(header))
        except NotBasicAuth as exc:
            raise _Answered(responses.failed(401, "unauthorized", str(exc))) from None
        if source is None:
            raise _Answered(responses.failed(401, "unauthorized", "unknown write key"))
        return source

    def _body_source(self, write_key: str | None) -> str:
        source = self._keys.source(write_key)
        if source is None:
            message = "unknown write key" if write_key else _NO_KEY
            raise _Answered(responses.failed(401, "unauthorized", message))
        return source

    async def _read(self, request: Request, endpoint: str, source: str | None) -> bytes:
        """The decoded body, under the endpoint's cap (413 past it)."""
        config = self._config
        limit = config.max_batch_bytes if endpoint == "batch" else config.max_event_bytes
        headers = request.headers
        try:
            return await read_body(
                request.stream(), headers.get("content-encoding"), _content_length(request), limit
            )
        except BodyTooLarge as exc:
            raise _Answered(responses.failed(413, "payload_too_large", str(exc))) from None
        except UnsupportedEncoding as exc:
            raise _Answered(responses.failed(415, "unsupported_encoding", str(exc))) from None
        except BodyUnreadable as exc:
            if source is None:
                raise _Answered(responses.failed(401, "unauthorized", _NO_KEY)) from None
            problem = Problem(FailureKind.MALFORMED_JSON, None, exc.reason)
            raise _Answered(await self._refuse(problem, exc.received, source)) from None

    async def _accept(self, collected: Collected, implied_type: str | None, body_bytes: int) -> Response:
        """Store the request's record, then answer: 200, or 400 when no event was good."""
        record = collected.record
        if not record.events and not record.rejected:
            return responses.ok([])  # an empty batch: nothing to keep
        failure = await self._store(encode_batch(record))
        if failure is not None:
            return failure
        self._metrics.stored(record.source, len(record.events), [r.kind for r in record.rejected], body_bytes)
        if record.events:
            return responses.ok(collected.rejected)
        first = collected.rejected[0].reason
        message = first if implied_type else f"every event of the batch was rejected; the first: {first}"
        return responses.failed(400, "invalid_events", message, rejected=collected.rejected)

    async def _refuse(
        self, problem: Problem, body: bytes, source: str, received_at_us: int | None = None
    ) -> Response:
        """Keep a body that is no Segment request as a rejection, then answer 400."""
        received_at_us = time.time_ns() // 1000 if received_at_us is None else received_at_us
        failure = await self._store(encode_batch(refused(problem, body, source, received_at_us)))
        if failure is not None:
            return failure
        self._metrics.stored(source, 0, [problem.kind.value], len(body))
        kind = problem.kind.value
        return responses.failed(400, kind, problem.reason, kind=kind, field=problem.field)

    async def _store(self, record: bytes) -> Response | None:
        """None once ``record`` is durable; otherwise the answer that asks for a retry."""
        try:
            await self._writer.write(record)
        except Backpressure as exc:
            return self._busy(str(exc))
        except LogUnavailable as exc:
            return responses.failed(
                503, "unavailable", str(exc), retry_after=self._config.retry_after_seconds
            )
        return None

    def _busy(self, reason: str) -> Response:
        return responses.failed(429, "rate_limited", reason, retry_after=self._config.retry_after_seconds)


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)

"""Request bodies of the Segment HTTP Tracking API, decoded only as far as the envelope.

``/v1/batch`` bodies are ``{"batch": [...], "sentAt"?, "context"?, "writeKey"?}``; each event
stays an exact slice of the body (``msgspec.Raw``). Single-event bodies (``/v1/track`` & co.)
are the event itself, judged at once so that its ``writeKey`` can authenticate it.

A batch nested so deeply that msgspec refuses it (``RecursionError`` past ~1000 levels) is
split by a bracket scan instead, so one hostile event costs its neighbours nothing.
"""

from __future__ import annotations

import re

import msgspec

from insightloop.collector.depth import within_depth
from insightloop.collector.event import judge
from insightloop.segment.message import Message, Problem
from insightloop.types import FailureKind


class Body(msgspec.Struct, frozen=True):
    """A request body whose envelope is sound: its events' exact bytes and batch fields.

    ``verdicts`` is set when the events were already judged (single-event bodies)."""

    events: list[bytes]
    verdicts: list[Message | Problem] | None
    sent_at: str | None
    context: bytes | None
    write_key: str | None


class Refused(msgspec.Struct, frozen=True):
    """A body that is not a Segment request at all, with the write key it gave, if any."""

    problem: Problem
    write_key: str | None


class _BatchBody(msgspec.Struct, rename={"sent_at": "sentAt", "write_key": "writeKey"}):
    batch: list[msgspec.Raw]
    sent_at: str | None = None
    context: msgspec.Raw = msgspec.Raw()  # empty when absent (msgspec cannot decode Raw | None)
    write_key: str | None = None


class _KeyOnly(msgspec.Struct, rename={"write_key": "writeKey"}):
    write_key: str | None = None


_batch_decoder = msgspec.json.Decoder(_BatchBody)
_key_decoder = msgspec.json.Decoder(_KeyOnly)
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{},:]')


def parse_single(body: bytes, max_event_bytes: int, max_depth: int) -> Body:
    """A single-event body: the event itself, judged (its failures are the event's, not the body's)."""
    verdict = judge(body, max_event_bytes, max_depth)
    write_key = verdict.write_key if isinstance(verdict, Message) else _write_key_of(body)
    return Body([body], [verdict], None, None, write_key)


def parse_batch(body: bytes, max_depth: int) -> Body | Refused:
    """A ``/v1/batch`` body split into its events' exact bytes, or why it is not one."""
    decoded = _decode(body)
    if decoded is None:
        return _parse_deep(body, max_depth)
    if isinstance(decoded, Refused):
        return decoded
    return _body_of(decoded, [bytes(raw) for raw in decoded.batch], max_depth)


def _decode(body: bytes) -> _BatchBody | Refused | None:
    """The envelope; None when it nests too deeply for msgspec."""
    try:
        return _batch_decoder.decode(body)
    except RecursionError:
        return None
    except msgspec.ValidationError as exc:
        return Refused(_validation_problem(str(exc)), _write_key_of(body))
    except msgspec.DecodeError as exc:
        return Refused(Problem(FailureKind.MALFORMED_JSON, None, f"body is not valid JSON: {exc}"), None)
    except UnicodeDecodeError as exc:
        problem = Problem(FailureKind.INVALID_UTF8, None, f"body is not valid UTF-8: {exc.reason}")
        return Refused(problem, _write_key_of(body))


def _body_of(decoded: _BatchBody, events: list[bytes], max_depth: int) -> Body | Refused:
    context = bytes(decoded.context) or None
    if context == b"null":
        context = None
    if context is not None:
        if not context.startswith(b"{"):
            problem = Problem(FailureKind.WRONG_TYPE, "context", "batch `context` is not an object")
            return Refused(problem, decoded.write_key)
        if not within_depth(context, max_depth):
            problem = Problem(
                FailureKind.TOO_DEEP, "context", f"batch `context` nests deeper than {max_depth}"
            )
            return Refused(problem, decoded.write_key)
    return Body(events, None, decoded.sent_at, context, decoded.write_key)


def _validation_problem(message: str) -> Problem:
    field = _field_of(message)
    if message.startswith("Object missing required field `batch`"):
        return Problem(FailureKind.MISSING_FIELD, "batch", "body has no `batch` list")
    if field is None:
        return Problem(FailureKind.WRONG_TYPE, None, f"body is not a JSON object: {message}")
    if field == "batch":
        return Problem(FailureKind.WRONG_TYPE, "batch", f"`batch` is not a list: {message}")
    return Problem(FailureKind.WRONG_TYPE, field, f"wrong type: {message}")


def _field_of(message: str) -> str | None:
    marker = "at `$."
    start = message.find(marker)
    return None if start < 0 else message[start + len(marker) :].rstrip("`")


def _write_key_of(body: bytes) -> str | None:
    """The body's ``writeKey`` when it has a readable one, whatever else is wrong with it."""
    try:
        return _key_decoder.decode(body).write_key
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def _parse_deep(body: bytes, max_depth: int) -> Body | Refused:
    found = _split_batch(body)
    if found is None:
        reason = "body nests too deeply to decode and has no readable `batch` list"
        return Refused(Problem(FailureKind.TOO_DEEP, None, reason), None)
    start, end, events = found
    decoded = _decode(body[:start] + b"[]" + body[end:])
    if decoded is None:
        reason = "body nests too deeply outside its `batch` list"
        return Refused(Problem(FailureKind.TOO_DEEP, None, reason), None)
    if isinstance(decoded, Refused):
        return decoded
    return _body_of(decoded, events, max_depth)


def _split_batch(body: bytes) -> tuple[int, int, list[bytes]] | None:
    """Where the top-level ``batch`` array starts and ends, and its elements' bytes.

    A scan of strings and brackets only: no recursion, however deep the elements nest.
    The elements are not validated here; each is judged on its own afterwards."""
    depth = 0
    key: bytes | None = None
    last_string: bytes | None = None
    start = element = -1
    events: list[bytes] = []
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token[0] == 0x22:  # a string
            if depth == 1:
                last_string = token
        elif token in (b"{", b"["):
            depth += 1
            if depth == 2 and start < 0 and token == b"[" and key == b'"batch"':
                start, element = match.start(), match.end()
        elif token in (b"}", b"]"):
            if depth == 2 and start >= 0:
                last = body[element : match.start()].strip()
                if last or events:
                    events.append(last)
                return start, match.end(), events
            depth -= 1
        elif token == b":" and depth == 1:
            key = last_string
        elif token == b"," and depth == 1:
            key = None
        elif token == b"," and depth == 2 and start >= 0:
            events.append(body[element : match.start()].strip())
            element = match.end()
    return None

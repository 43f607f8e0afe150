"""The demo's traffic: valid Segment batches, with the expected share of nasty data."""

from __future__ import annotations

import datetime as dt
import gzip
from collections import Counter

import orjson
import pytest

from insightloop.demo.traffic import OutgoingBatch, Traffic
from insightloop.segment import message

NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)
BATCHES = 800


def generate(seed: int = 7) -> list[OutgoingBatch]:
    traffic = Traffic("web-key", "mobile-key", seed=seed)
    return [traffic.next_batch(NOW + dt.timedelta(seconds=i)) for i in range(BATCHES)]


@pytest.fixture(scope="module")
def batches() -> list[OutgoingBatch]:
    return generate()


def events_of(batch: OutgoingBatch) -> tuple[dict[str, object], list[bytes]]:
    body = orjson.loads(gzip.decompress(batch.body))
    return body, [orjson.dumps(event) for event in body["batch"]]


def us(moment: dt.datetime) -> int:
    return message.to_micros(moment)


def test_every_body_is_a_segment_batch_within_the_limits(batches: list[OutgoingBatch]) -> None:
    for batch in batches:
        body, events = events_of(batch)
        assert set(body) == {"batch", "sentAt"}
        assert message.parse_time(str(body["sentAt"])) is not None
        assert len(gzip.decompress(batch.body)) < 500 * 1024
        assert all(len(raw) < 32 * 1024 for raw in events)
        assert len(events) == batch.events


def test_valid_events_pass_the_spec_and_invalid_ones_miss_their_ids(batches: list[OutgoingBatch]) -> None:
    types: Counter[str] = Counter()
    for batch in batches:
        _, events = events_of(batch)
        valid: list[message.Message] = []
        problems: list[message.Problem] = []
        for raw in events:
            decoded = message.decode(raw)
            assert isinstance(decoded, message.Message)
            problem = message.check(decoded)
            if problem is None:
                valid.append(decoded)
            else:
                problems.append(problem)
        assert sorted(d.message_id or "" for d in valid) == sorted(batch.valid_ids)
        assert len(problems) == batch.invalid
        assert all(p.field == "userId" for p in problems)
        types.update(d.type or "" for d in valid)
    assert set(types) == {"track", "page", "screen", "identify", "group", "alias"}


def test_expected_shares_of_retries_late_and_invalid_events(batches: list[OutgoingBatch]) -> None:
    first = [b for b in batches if not b.retry]
    retries = [b for b in batches if b.retry]
    valid = sum(len(b.valid_ids) for b in first)
    assert 0.02 <= len(retries) / len(batches) <= 0.09
    assert 0.02 <= sum(b.late for b in first) / valid <= 0.12
    assert 0.002 <= sum(b.invalid for b in first) / (valid + sum(b.invalid for b in first)) <= 0.02
    ids = [i for b in first for i in b.valid_ids]
    assert len(ids) == len(set(ids)), "messageIds are unique except in re-sent batches"


def test_a_retry_is_the_same_body_sent_again_later(batches: list[OutgoingBatch]) -> None:
    originals = {b.batch_id: (index, b) for index, b in enumerate(batches) if not b.retry}
    for index, retry in enumerate(batches):
        if retry.retry:
            first_index, first = originals[retry.batch_id]
            assert first_index < index
            assert retry.body == first.body
            assert retry.write_key == first.write_key


def test_late_events_stay_late_after_clock_skew_correction(batches: list[OutgoingBatch]) -> None:
    late = [b for b in batches if b.late and not b.retry]
    assert late
    for batch in late:
        body, events = events_of(batch)
        received = us(message.parse_time(str(body["sentAt"])) or NOW)  # received as sent
        for raw in events:
            decoded = message.decode(raw)
            assert isinstance(decoded, message.Message)
            corrected, _ = message.event_times_us(decoded, received, str(body["sentAt"]))
            age_days = (received - corrected) / 86_400e6
            assert 1.0 <= age_days <= 5.1


def test_a_skewed_client_is_corrected_to_the_right_time(batches: list[OutgoingBatch]) -> None:
    skewed = 0
    for batch in batches:
        body, events = events_of(batch)
        sent_at = message.parse_time(str(body["sentAt"]))
        assert sent_at is not None
        received = sent_at if not (sent_at - NOW).total_seconds() > 3600 else None
        if received is not None:
            continue
        skewed += 1
        index = batches.index(batch)  # sent at NOW + index seconds, whatever the client's clock says
        received_us = us(NOW + dt.timedelta(seconds=index))
        for raw in events:
            decoded = message.decode(raw)
            assert isinstance(decoded, message.Message)
            corrected, original = message.event_times_us(decoded, received_us, str(body["sentAt"]))
            assert (
                original is not None and original - received_us > 2 * 3600e6
            )  # the client's clock is hours ahead
            assert received_us - 600e6 <= corrected <= received_us  # corrected: minutes before receipt
    assert skewed > 0


def test_same_seed_same_traffic() -> None:
    assert [b.body for b in generate()[:50]] == [b.body for b in generate()[:50]]
    assert [b.body for b in generate(seed=8)[:50]] != [b.body for b in generate()[:50]]


def test_markers_are_valid_on_time_track_events(batches: list[OutgoingBatch]) -> None:
    markers = [b for b in batches if b.marker is not None]
    assert len(markers) > BATCHES // 4
    for batch in markers:
        assert batch.marker in batch.valid_ids
        assert not batch.late and not batch.retry

"""What a request keeps of a client's recorded-only fields is bounded in depth, entries, text and size,
whichever edge built it; an ordinary record is kept as it is."""

from __future__ import annotations

import json

from imagestudio import client_record
from imagestudio.job_requests import EditRequest, GenerateRequest


def nested(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def test_an_ordinary_record_is_kept_as_it_is() -> None:
    sent = {"sampler_name": "Euler a", "cfg_scale": 7, "hr_scale": 2.0, "styles": ["a", "b"], "alwayson": {}}
    request = GenerateRequest.build(model="tiny-z-image", prompt="x", client=sent)
    assert request.client == sent


def test_a_300_deep_field_is_cut_at_the_depth_limit() -> None:
    request = GenerateRequest.build(model="tiny-z-image", prompt="x", client={"deep": nested(300)})
    text = json.dumps(request.client)
    assert text.count("[") == client_record.MAX_DEPTH - 1
    assert f"nested deeper than {client_record.MAX_DEPTH} levels" in text
    # The request itself serialises (it is recorded with every job and sent back in answers).
    request.model_dump_json()


def test_many_long_fields_are_cut_to_a_few_kilobytes() -> None:
    # What a 320 kB A1111 body of unknown fields sends: 320 fields of 1000 characters.
    sent = {f"field_{i}": "x" * 1000 for i in range(320)}
    record = EditRequest.build(prompt="x", client=sent).client
    assert len(json.dumps(record).encode()) <= client_record.MAX_BYTES
    assert "x" * 1000 not in json.dumps(record)


def test_wide_and_deep_together_stay_within_the_visit_budget() -> None:
    level: dict = {f"k{i}": "v" for i in range(64)}
    for _ in range(4):
        level = {f"k{i}": level for i in range(64)}  # 64**5 leaves if walked in full
    record = client_record.bounded({"wide": level})
    assert len(json.dumps(record).encode()) <= client_record.MAX_BYTES


def test_keys_and_odd_values_become_short_plain_json() -> None:
    record = client_record.bounded({"k" * 1000: object(), 7: (1, 2), "list": list(range(100))})
    assert json.loads(json.dumps(record)) == record
    assert all(len(key) <= client_record.MAX_KEY_CHARS for key in record)
    assert record["7"] == [1, 2]
    assert len(record["list"]) == client_record.MAX_ITEMS + 1
    assert record["list"][-1] == "<36 more items not recorded>"

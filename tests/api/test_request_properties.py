"""Property-based requests over real HTTP (hypothesis): a 2xx, or a 4xx/503 in OpenAI's shape; never a 500.

Complements the schemathesis run (which follows the OpenAPI schema) with values the schema does not
describe: wrong JSON types, absurd numbers, control characters, huge prompts.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from tests.api.conftest import assert_error_shape

JSON_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["2", "64x64", "auto", "\x00", "1e400", "b64_json", "url"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
#: The real model is not here, so an accepted /v1 request ends in 503 after validation: fast.
GENERATION = st.fixed_dictionaries(
    {"prompt": st.one_of(st.text(max_size=40), st.just("к" * 5000), JSON_VALUE)},
    optional={
        "model": st.one_of(st.just("z-image-turbo"), JSON_VALUE),
        "n": st.one_of(st.integers(min_value=-2, max_value=40), JSON_VALUE),
        "size": st.one_of(st.sampled_from(["1024x1024", "64x64", "17x9", "auto", "0x0"]), JSON_VALUE),
        "seed": JSON_VALUE,
        "steps": JSON_VALUE,
        "guidance_scale": JSON_VALUE,
        "negative_prompt": JSON_VALUE,
        "response_format": JSON_VALUE,
        "unknown_field": JSON_VALUE,
    },
)
JOB = st.fixed_dictionaries(
    {
        "kind": st.one_of(st.just("generate"), JSON_VALUE),
        "prompt": st.one_of(st.text(min_size=1, max_size=20), JSON_VALUE),
        "model": st.one_of(st.just("tiny-z-image"), JSON_VALUE),
    },
    optional={
        "width": st.one_of(st.sampled_from([16, 32, 64, 65]), JSON_VALUE),
        "height": st.one_of(st.sampled_from([16, 32, 64]), JSON_VALUE),
        "steps": st.one_of(st.integers(min_value=0, max_value=2), JSON_VALUE),
        "count": st.one_of(st.integers(min_value=0, max_value=2), JSON_VALUE),
        "seed": JSON_VALUE,
    },
)
SETTINGS = examples(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ALLOWED = {200, 202, 400, 413, 429, 503}


@pytest.fixture
def serve_once(serve) -> Any:
    """One live server for all the examples of a test, with room for each client's jobs."""
    return serve(server={"max_queued_per_client": 100})


def check(response: Any) -> None:
    assert response.status_code in ALLOWED, response.text
    if response.status_code >= 400:
        assert_error_shape(response, response.status_code)
    event(str(response.status_code))


@SETTINGS
@given(body=GENERATION)
def test_generations_answer_2xx_or_an_error_in_shape(live, body: dict[str, Any]) -> None:
    with live.client() as http:
        check(http.post("/v1/images/generations", json=body))


@SETTINGS
@given(body=JOB)
def test_jobs_answer_2xx_or_an_error_in_shape(serve_once, body: dict[str, Any]) -> None:
    with serve_once.client() as http:
        response = http.post("/api/jobs", json=body)
        check(response)
        if response.status_code == 202:
            # It runs on the tiny model; wait so the queue never fills and every example is judged alike.
            job_id = response.json()["id"]
            info = serve_once.services.queue.wait(job_id, timeout=120)
            assert info.state.value in ("done", "failed"), info
            assert info.state.value == "done" or (info.error and info.error.http_status < 500), info.error

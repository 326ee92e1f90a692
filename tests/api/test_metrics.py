"""``GET /metrics`` over a live single-PC server: Prometheus' own parser reads what a job left there."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import assert_error_shape, wait_until

KEY = "metrics-test-key"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_follow_the_key_rules_and_count_a_finished_job(serve) -> None:
    live = serve(server={"api_key": KEY})
    with live.client() as http:
        assert_error_shape(http.get("/metrics"), 401)
    with live.client(headers={"Authorization": f"Bearer {KEY}"}) as http:
        before = _samples(http.get("/metrics").text)
        job = http.post("/api/jobs", json={"kind": "generate", "model": "tiny-z-image", "prompt": "кот"})
        assert job.status_code == 202, job.text
        path = f"/api/jobs/{job.json()['id']}"
        finished = wait_until(lambda: http.get(path).json()["state"] == "done", 120, "the job")
        assert finished
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = _samples(response.text)
    done = (("model", "tiny-z-image"), ("state", "done"))
    assert before.get(("imagestudio_jobs_finished_total", done), 0) == 0
    assert after[("imagestudio_jobs_finished_total", done)] == 1
    assert after[("imagestudio_job_seconds_count", (("model", "tiny-z-image"),))] == 1
    assert after[("imagestudio_queue_depth", ())] == 0
    assert after[("imagestudio_worker_alive", ())] == 1

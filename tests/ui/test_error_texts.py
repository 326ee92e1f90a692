"""Errors raised by the real queue, runner, planner and downloader read in the page's language."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from imagestudio.engine.pipeline_calls import check_output
from imagestudio.errors import BadOutput, JobCancelled, NotEnoughDiskSpace, QueueFull, ServiceStopping
from imagestudio.job_requests import GenerateRequest
from imagestudio.jobs.local_queue import JobQueue
from imagestudio.models.download import check_disk_space
from imagestudio.ui.common import UIContext, error_message
from imagestudio.ui.live_backend import job_failure
from imagestudio.ui.texts import Texts

WAIT = 30.0


@pytest.fixture(scope="module")
def texts() -> Texts:
    return Texts.load()


def request(prompt: str) -> GenerateRequest:
    return GenerateRequest.build(model="tiny-z-image", prompt=prompt, seed=1, width=16, height=16)


def test_a_full_queue_and_a_stopping_server_read_in_russian(texts: Texts) -> None:
    entered, release = threading.Event(), threading.Event()

    def runner(req, on_step, cancel):
        entered.set()
        release.wait(WAIT)
        raise JobCancelled("cancelled")

    queue = JobQueue(runner, max_queue=1)
    queue.start()
    try:
        queue.submit(request("running"))
        assert entered.wait(WAIT)
        queue.submit(request("waiting"))
        with pytest.raises(QueueFull) as full:
            queue.submit(request("one too many"))
        assert texts.error(full.value, "ru") == "Очередь заполнена (мест в ней: 1); попробуйте чуть позже."
    finally:
        release.set()
        queue.stop(timeout=WAIT)
    with pytest.raises(ServiceStopping) as stopping:
        queue.submit(request("late"))
    assert "Сервер останавливается" in texts.error(stopping.value, "ru")


@pytest.mark.parametrize(
    ("pixels", "dtype", "expected"),
    [
        (np.zeros((8, 8, 3)), "bfloat16", "полностью чёрную картинку: попробуйте меньший размер"),
        (np.zeros((8, 8, 3)), "float16", "задайте torch_dtype: bfloat16"),
        (np.full((8, 8, 3), np.nan), "bfloat16", "NaN вместо картинки"),
    ],
)
def test_bad_output_reaches_the_page_in_russian(texts: Texts, pixels, dtype, expected) -> None:
    with pytest.raises(BadOutput) as bad:
        check_output(pixels, dtype)
    # The way the page sees it: the queue keeps the error as data, the page rebuilds it.
    from imagestudio.jobs.model import JobError

    failure = job_failure(JobError(bad.value.message, code=bad.value.code, details=bad.value.details))
    ctx = UIContext(backend=None, texts=texts)  # type: ignore[arg-type]
    assert expected in error_message(ctx, failure, "ru")  # type: ignore[arg-type]
    assert error_message(ctx, failure, "en").startswith("The model produced")  # type: ignore[arg-type]


def test_a_disk_too_small_is_explained_with_its_numbers(texts: Texts, tmp_path: Path) -> None:
    class Usage:
        free = 3 * 1000**3

    with pytest.raises(NotEnoughDiskSpace) as refused:
        check_disk_space("z-image-turbo", 30 * 1000**3, tmp_path / "models", 0, lambda _: Usage())
    message = texts.error(refused.value, "ru")
    assert message.startswith("Не хватает места на диске для z-image-turbo: нужно 30")
    assert str(tmp_path) in message


def test_an_offline_download_fails_with_a_translatable_reason(texts: Texts, settings) -> None:
    # The test machine runs with HF_HUB_OFFLINE=1 (tests/conftest.py): the real download service fails.
    from imagestudio.models.background import BackgroundDownloads

    handle = BackgroundDownloads(settings).start("z-image-turbo")
    assert handle.wait(WAIT)
    state = handle.as_json()
    assert (state["status"], state["error_code"]) == ("failed", "download_offline")
    reason = texts.coded(state["error_code"], state["error_details"], "ru", state["error"])
    # A sentence of its own ("z-image-turbo не скачать" was not Russian).
    assert reason.startswith("Модель z-image-turbo нельзя скачать: HF_HUB_OFFLINE=1 запрещает")

"""*Upscale ×2* under every result gallery and in History: the chosen picture becomes an upscale job.

The job is followed by a page's own job panel (progress, Cancel, the result in its gallery), like any
Generate or Edit job: under a gallery, that page's; from History, the Generate page's, which opens. The
upscaler is ``upscale.default_upscaler``; the picture's own prompt goes with it, so History finds the
enlarged picture by the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import InvalidRequest

if TYPE_CHECKING:
    from imagestudio.job_requests import UpscaleRequest
    from imagestudio.ui.common import JobPanel, UIContext

#: The page's button enlarges twice: the usual step past Z-Image's own 1-2 megapixels.
PAGE_SCALE = 2.0


def upscale_request(ctx: UIContext, path: str | None) -> UpscaleRequest:
    """The upscale of the picture at ``path`` (a result or History file), resolved and checked."""
    from imagestudio.job_requests import build_upscale_request
    from imagestudio.storage.inputs import InputLimits, read_input_image
    from imagestudio.storage.metadata import read_metadata

    if not path:
        raise InvalidRequest("choose a picture to upscale", param="image", code="need_image")
    settings = ctx.backend.settings
    picture = read_input_image(Path(path), InputLimits.from_settings(settings), label="image")
    try:
        prompt = str(read_metadata(Path(path)).get("prompt") or "")
    except (OSError, ValueError):
        prompt = ""
    return build_upscale_request(settings, picture, scale=PAGE_SCALE, prompt=prompt)


def wire_upscale(
    ctx: UIContext,
    panel: JobPanel,
    trigger: Any,
    inputs: list[Any],
    path_of: Callable[..., str | None],
    name: str,
) -> None:
    """``trigger`` upscales the picture ``path_of(*values)`` names, followed by ``panel``.

    ``inputs`` end with the page's language box; the values before it go to ``path_of``.
    """
    from imagestudio.ui.common import client_of, run_job, submit_all, wire_job_panel

    def body(*values: Any, request: Any) -> Iterator[dict[Any, Any]]:
        *picked, lang = values

        def submit() -> list[str]:
            return submit_all(ctx, [upscale_request(ctx, path_of(*picked))], client_of(request))

        # "fixed": an upscale has no seed of its own to put in the page's seed box.
        yield from run_job(ctx, panel, submit, lang, "fixed", request)

    wire_job_panel(ctx, panel, [trigger], inputs, body, name=name)

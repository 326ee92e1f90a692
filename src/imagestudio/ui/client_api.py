"""The pages' endpoint for ``gradio_client`` (the footer's "Use via API"): named, typed parameters.

The Generate page's own event takes the form's sixteen widgets in order (a hidden language box, the
start-picture editor, an error box…), which ``view_api()`` could only list as ``param_0 … param_15``.
This endpoint takes what a script means instead and goes the one request path: request builder → job
queue → History (recorded like any page job), answering with the pictures' files. No ``from __future__
import annotations``: Gradio reads the parameters' types from the signature.
"""

from typing import Any

from imagestudio.errors import UserError
from imagestudio.ui.common import UIContext, client_of, error_message, submit_all

API_NAME = "generate_image"


def wire(ctx: UIContext, default_model: str) -> None:
    """Add ``/generate_image`` to the Blocks being built (call inside its context)."""
    import gradio as gr
    from gradio.data_classes import FileData

    from imagestudio.job_requests import GenerateRequest
    from imagestudio.registry import get_model

    def generate_image(
        prompt: str,
        model: str = default_model,
        width: int = 1024,
        height: int = 1024,
        steps: int | None = None,
        seed: int | None = None,
        count: int = 1,
        request: gr.Request = None,  # type: ignore[assignment]  # filled in by Gradio
    ) -> list[FileData]:
        """Make ``count`` pictures of ``prompt`` with a text-to-image model (the model's own number of
        steps when ``steps`` is empty; a random seed when ``seed`` is empty). Returns the PNG files."""
        try:
            fields: dict[str, Any] = {
                "prompt": prompt,
                "model": model,
                "width": width,
                "height": height,
                "steps": steps if steps is not None else get_model(model).default_steps,
                "seed": seed,
                "count": count,
            }
            get_model(model, task="text-to-image")
            resolved = GenerateRequest.build(**fields).resolved(ctx.backend.settings)
            (job_id,) = submit_all(ctx, [resolved], client_of(request))
        except UserError as exc:
            raise gr.Error(error_message(ctx, exc, "en"), print_exception=False) from None
        return [FileData(path=str(image.path)) for image in finished_images(ctx, job_id)]

    gr.api(generate_image, api_name=API_NAME, concurrency_limit=None)


def finished_images(ctx: UIContext, job_id: str) -> list[Any]:
    """Wait (on the queue's events) for the job and return its saved images, or raise its error."""
    import gradio as gr

    from imagestudio.jobs.model import JobState

    for snap in ctx.backend.watch(job_id):
        if not snap.finished:
            continue
        if snap.state is JobState.DONE:
            return list(snap.results)
        if snap.state is JobState.CANCELLED:
            raise gr.Error(ctx.t("status.cancelled", "en"), print_exception=False)
        raise gr.Error(error_message(ctx, snap.error or Exception(), "en"), print_exception=False)
    raise gr.Error(ctx.t("err.job_not_found", "en"), print_exception=False)

"""The pages' endpoints for ``gradio_client`` (the footer's "Use via API"): named, typed parameters.

The Generate and Edit pages' own events take the forms' widgets in order (a hidden language box, the
start-picture editor, an error box…), which ``view_api()`` could only list as ``param_0 … param_15``.
``/generate_image`` and ``/edit_image`` take what a script means instead and go the one request path:
request builder → job queue → History (recorded like any page job), answering with the pictures' files.
No ``from __future__ import annotations``: Gradio reads the parameters' types from the signature.
"""

from pathlib import Path
from typing import Any

from imagestudio.errors import UserError
from imagestudio.ui.common import UIContext, client_of, error_message, submit_all

API_NAME = "generate_image"
EDIT_API_NAME = "edit_image"


def wire(ctx: UIContext, default_model: str, default_edit_model: str | None = None) -> None:
    """Add ``/generate_image`` and ``/edit_image`` to the Blocks being built (call inside its context)."""
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
    if default_edit_model is None:
        return

    def edit_image(
        prompt: str,
        image: FileData,
        image_2: FileData | None = None,
        image_3: FileData | None = None,
        model: str = default_edit_model,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        seed: int | None = None,
        true_cfg_scale: float | None = None,
        count: int = 1,
        request: gr.Request = None,  # type: ignore[assignment]  # filled in by Gradio
    ) -> list[FileData]:
        """Edit ``image`` (and up to two more references, ``image_2``/``image_3``) as ``prompt`` says,
        with an edit model (``gradio_client.handle_file(path)`` uploads a picture; a result of this
        server can be passed back). The output follows the last image's size when ``width``/``height``
        are empty; the model's own steps and true CFG when those are. Returns the PNG files."""
        from imagestudio.job_requests import build_image_request
        from imagestudio.ui.edit_page import read_uploads

        # Before anything else: a path that is not this server's upload or output is refused with the
        # same answer as the pages give (nothing says whether the file exists), and is never opened.
        paths = [uploaded_path(given) for given in (image, image_2, image_3)]
        try:
            resolved = build_image_request(
                ctx.backend.settings,
                model=model,
                prompt=prompt,
                images=read_uploads(ctx, paths, "en"),
                task="edit",
                width=width,
                height=height,
                steps=steps,
                seed=seed,
                true_cfg_scale=true_cfg_scale,
                count=count,
            )
            (job_id,) = submit_all(ctx, [resolved], client_of(request))
        except UserError as exc:
            raise gr.Error(error_message(ctx, exc, "en"), print_exception=False) from None
        return [FileData(path=str(image.path)) for image in finished_images(ctx, job_id)]

    gr.api(edit_image, api_name=EDIT_API_NAME, concurrency_limit=None)


def uploaded_path(given: Any) -> str | None:
    """The path of a file parameter (Gradio's FileData, as a model or its dict), checked to be one of this
    server's uploads or outputs; raises :class:`~imagestudio.ui.uploads.NotUploadedHere` otherwise.

    Gradio checks a payload it recognises as a file (``meta``) itself; one without is handed over as it
    came, so the check is repeated here, on every path, before any file is opened.
    """
    from imagestudio.ui.uploads import NotUploadedHere, is_uploaded_file

    if given is None:
        return None
    path = given.get("path") if isinstance(given, dict) else getattr(given, "path", given)
    if not isinstance(path, (str, Path)) or not str(path) or not is_uploaded_file(path):
        raise NotUploadedHere()
    return str(path)


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

"""Image uploads that reach the studio's own input checks undecoded.

``gr.Image`` opens every upload with Pillow before the event handler runs, so a corrupt or fake picture
fails inside Gradio with a bare "Error" toast. :func:`image_input` makes a stock image upload whose value
is the uploaded file's path; :func:`imagestudio.storage.inputs.read_input_image` then decodes it with the
same limits and one-line messages as the CLI and the API, and the page shows the message under the
control.
"""

from __future__ import annotations

import types
from typing import Any


def _upload_path(self: Any, payload: Any) -> str | None:
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    if getattr(payload, "path", None) and not url.startswith("data:"):
        # Gradio has already checked that the path is one of its own uploads.
        return str(payload.path)
    # Pasted images arrive as data URLs; the stock preprocessing writes them to Gradio's cache.
    return type(self).preprocess(self, payload)


def image_input(**kwargs: Any) -> Any:
    """A ``gr.Image`` upload whose handler value is the uploaded file's path, never decoded by Gradio.

    The override is per instance rather than a subclass: Gradio's component metaclass writes a ``.pyi``
    stub next to the source file of every component subclass it sees.
    """
    import gradio as gr

    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    component.preprocess = types.MethodType(_upload_path, component)  # type: ignore[method-assign]
    return component

"""Image uploads that reach the studio's own input checks undecoded.

``gr.Image`` opens every upload with Pillow before the event handler runs, so a corrupt or fake picture
fails inside Gradio with a bare "Error" toast. :func:`image_input` makes a stock image upload whose value
is the uploaded file's path; :func:`imagestudio.storage.inputs.read_input_image` then decodes it with the
same limits and one-line messages as the CLI and the API, and the page shows the message under the
control.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _upload_path(self: Any, payload: Any) -> str | None:
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    if getattr(payload, "path", None) and not url.startswith("data:"):
        # guard_file_inputs (around this) has checked that the path is one of this server's uploads.
        return str(payload.path)
    # Pasted images arrive as data URLs; the stock preprocessing writes them to Gradio's cache.
    stored: str | None = type(self).preprocess(self, payload)
    return stored


def image_input(**kwargs: Any) -> Any:
    """A ``gr.Image`` upload whose handler value is the uploaded file's path, never decoded by Gradio.

    The override is per instance rather than a subclass: Gradio's component metaclass writes a ``.pyi``
    stub next to the source file of every component subclass it sees.
    """
    import gradio as gr

    # No "Share" (Gradio's default): it posts to Hugging Face Spaces, which a local studio is not.
    kwargs.setdefault("buttons", ["download", "fullscreen"])
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    component.preprocess = types.MethodType(_upload_path, component)  # type: ignore[method-assign]
    return component


class NotUploadedHere(ValueError):
    """A file input named a path that is not one of this server's uploads.

    Its message is the same for every such path, existing or not: the answer must not tell a caller
    what is on the disk.
    """

    def __init__(self) -> None:
        super().__init__("this file was not uploaded to this server")


def is_uploaded_file(path: str | Path) -> bool:
    """True if ``path`` is a file Gradio stored for an upload (its upload/cache folder), or a file it
    serves as static (the outputs folder). Symlinks and ``..`` are resolved first."""
    from gradio.utils import get_upload_folder, is_in_or_equal, is_static_file

    try:
        return is_in_or_equal(path, get_upload_folder()) or is_static_file(str(path))
    except (OSError, ValueError):
        return False


def _file_paths(value: Any) -> Iterator[tuple[str, str]]:
    """(path, url) of every file in a component's payload: each model in the tree with a ``path``
    (Gradio's FileData, ImageData …, whose classes are not related)."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        if "path" in fields:
            path = getattr(value, "path", None)
            url = getattr(value, "url", None)
            yield (path if isinstance(path, str) else ""), (url if isinstance(url, str) else "")
        for name in fields:
            if name not in ("path", "url"):
                yield from _file_paths(getattr(value, name, None))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _file_paths(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _file_paths(item)


def guard_file_inputs(blocks: Any) -> None:
    """Make every component of ``blocks`` refuse file paths that are not this server's uploads.

    Gradio checks this itself only in an app it launched; a mounted one trusts any path a client
    names. This check runs in each component's preprocessing, so it holds for payloads Gradio's own
    check does not recognise as files (no ``meta``) as well.
    """
    from gradio.components import Image

    for component in getattr(blocks, "blocks", {}).values():
        preprocess = getattr(component, "preprocess", None)
        if preprocess is None or not hasattr(component, "data_model"):
            continue
        # gr.Image decodes a data: URL and ignores the path beside it; other components open the path.
        data_url_wins = isinstance(component, Image)
        component.preprocess = _guarded(preprocess, data_url_wins)


def _guarded(preprocess: Any, data_url_wins: bool) -> Any:
    def checked(payload: Any) -> Any:
        for path, url in _file_paths(payload):
            if not path or (data_url_wins and url.startswith("data:")):
                continue
            if not is_uploaded_file(path):
                raise NotUploadedHere()
        return preprocess(payload)

    return checked

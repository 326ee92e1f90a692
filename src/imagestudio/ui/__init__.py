"""The studio in the browser: Gradio pages (Generate, Edit, History, System) in English and Russian.

Importing this package is cheap; Gradio is imported when :func:`mount_studio` builds the pages.
"""

from __future__ import annotations

from typing import Any


def mount_studio(app: Any, *args: Any, **kwargs: Any) -> Any:
    """Mount the pages at "/" of the server's FastAPI ``app`` (:func:`imagestudio.ui.app.mount_studio`)."""
    from imagestudio.ui.app import mount_studio as mount

    return mount(app, *args, **kwargs)

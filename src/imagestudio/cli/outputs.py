"""The folder a CLI command writes its images to, checked before any model loads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagestudio.config import Settings


def prepare_out_dir(out: Path | None, settings: Settings) -> Path:
    """``--out`` (else ``storage.outputs_dir``), made and proven writable now, with crash leftovers removed.

    A bad folder (an existing file, a path under a file, a read-only disk) is a one-line error before
    the model's minutes of loading and running, not a traceback after them.
    """
    from imagestudio.storage.files import check_writable_folder, clean_stale_temp_files

    directory = out if out is not None else settings.outputs_dir
    check_writable_folder(directory, "--out" if out is not None else "storage.outputs_dir")
    clean_stale_temp_files(directory)
    return directory

"""Which app features this build has, for the benchmarks that need ones still being built.

A benchmark whose feature is missing reports "not available in this build" with the reason, never a
number measured some other way.
"""

from __future__ import annotations

from benchmarks.report import NOT_AVAILABLE


def edit_missing() -> str | None:
    """Why editing cannot be benchmarked here; None when ``Studio.edit`` and ``EditRequest`` exist."""
    from imagestudio import job_requests
    from imagestudio.studio import Studio

    if not callable(getattr(Studio, "edit", None)):
        return f"{NOT_AVAILABLE}: Studio has no edit method (image editing)"
    if not hasattr(job_requests, "EditRequest"):
        return f"{NOT_AVAILABLE}: imagestudio.job_requests has no EditRequest"
    return None


def keep_in_ram_missing() -> str | None:
    """Why ``device.keep_in_ram`` switching cannot be benchmarked here, or None when the setting exists."""
    from imagestudio.config import DeviceSettings

    if "keep_in_ram" not in DeviceSettings.model_fields:
        return f"{NOT_AVAILABLE}: the device.keep_in_ram setting does not exist yet"
    return None

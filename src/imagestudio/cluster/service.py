"""Building the cluster queue for ``Services``: Ray's environment first, then Ray itself."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from imagestudio.cluster.runtime import ray_environment
from imagestudio.errors import ConfigError

if TYPE_CHECKING:
    from imagestudio.cluster.ray_pool import RayClusterQueue
    from imagestudio.config import Settings
    from imagestudio.jobs.local_queue import PreviewMaker
    from imagestudio.jobs.recorder import JobRecorder


def build_cluster_queue(
    settings: Settings, recorder: JobRecorder | None, preview: PreviewMaker | None = None
) -> RayClusterQueue:
    """The Ray-backed queue for ``cluster.backend: ray``; starts nothing until its ``start()``.

    Ray reads some settings from the environment when it is imported (whether to stay on loopback,
    token auth), so they are set before the first import.
    """
    os.environ.update(ray_environment(settings.cluster))
    try:
        from imagestudio.cluster.ray_pool import RayClusterQueue
    except ImportError as exc:
        raise ConfigError(
            'cluster.backend is "ray" but Ray is not installed here: pip install "imagestudio[cluster]" '
            f"({exc})"
        ) from exc
    return RayClusterQueue(settings, recorder=recorder, preview=preview)

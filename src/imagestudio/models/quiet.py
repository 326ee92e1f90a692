"""Silence the libraries' own progress bars while a pipeline is built or loaded."""

from __future__ import annotations


def quiet_library_progress() -> None:
    """Turn off diffusers'/transformers' own "Loading pipeline components" bars.

    The app reports progress itself (a rich bar on the CLI, job events in the UI/API); the libraries'
    tqdm bars would interleave with it on stderr and, for a server, fill its log.
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()

"""Which waiting job an idle worker takes: the head's model-affinity rule.

Loading a model costs 10–60 s on a real GPU, a step a fraction of a second; so an idle worker takes

1. the oldest job for the model it already holds, else
2. the oldest job for a model no live worker holds (someone has to load it; nobody else will), else
3. the oldest job (it switches models).

Rule 3 only fires when every waiting job's model is held by another *busy* worker: waiting for that
worker could be quicker, but starving the idle one would waste a GPU for as long as the queue lasts.
A job whose model an *idle* worker holds is left to that worker (it is about to take it), and so is a
job an idle worker would run faster (its memory plan moves fewer weights per image: a bigger card);
a worker's own model is still its own. Jobs a worker cannot hold (the model is not on its disk, or its
plan does not fit the box's memory) are never given to it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import TypeVar

T = TypeVar("T")


def pick_job(
    waiting: Iterable[T],
    *,
    model_of: Callable[[T], str | None],
    held: str | None,
    held_by_others: Collection[str],
    held_by_idle_others: Collection[str] = (),
    can_hold: Callable[[str | None], bool] = lambda _model: True,
    faster_idle_elsewhere: Collection[str] = (),
) -> T | None:
    """The job (from ``waiting``, oldest first) an idle worker holding ``held`` should run, or None.

    ``held_by_others`` are the models resident on the other live workers, ``held_by_idle_others``
    those of the others that are idle right now; ``faster_idle_elsewhere`` the models an idle other
    worker runs faster than this one.
    """
    unheld = oldest = None
    for job in waiting:
        model = model_of(job)
        if not can_hold(model):
            continue
        if model != held and (model in held_by_idle_others or model in faster_idle_elsewhere):
            continue
        if held is not None and model == held:
            return job
        if unheld is None and model not in held_by_others:
            unheld = job
        if oldest is None:
            oldest = job
    return unheld if unheld is not None else oldest

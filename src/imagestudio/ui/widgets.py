"""Small pieces of HTML the pages update while they run: progress bar, error line, memory bars.

Plain functions of their inputs (no Gradio here), so they are tested without a browser. Everything a
user typed is escaped. The ``data-*`` attributes are the pages' stable hooks for tests and styles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from imagestudio.jobs.model import JobProgress
from imagestudio.ui.texts import Texts

JOB_STATES = ("queued", "loading", "running", "done", "failed", "cancelled", "cancelling")


def duration(texts: Texts, lang: str, seconds: float) -> str:
    """``12 s`` / ``1 min 5 s`` / ``2 h 3 min`` in the reader's language."""
    total = max(0, math.ceil(seconds))
    if total < 60:
        return texts.t("unit.seconds", lang, n=total)
    if total < 3600:
        return texts.t("unit.minutes", lang, m=total // 60, s=total % 60)
    return texts.t("unit.hours", lang, h=total // 3600, m=total % 3600 // 60)


@dataclass(frozen=True)
class Progress:
    """What a progress bar shows: a state, and for a running job where it is."""

    state: str
    #: Step and image of the job, its time so far and the estimate left (None before the first step).
    job: JobProgress | None = None
    ahead: int | None = None
    message: str = ""
    #: Running before the first step: True while the model loads, False once it is about to step.
    loading: bool = True

    @property
    def step(self) -> int:
        return self.job.step if self.job is not None else 0

    @property
    def steps(self) -> int:
        return self.job.steps if self.job is not None else 0

    @property
    def fraction(self) -> float:
        """Of the whole job (all its images)."""
        if self.state == "done":
            return 1.0
        if self.job is None or self.job.steps <= 0 or self.job.images <= 0:
            return 0.0
        return min(1.0, self.job.fraction)


def _progress_text(texts: Texts, lang: str, p: Progress) -> str:
    if p.state == "queued":
        return texts.t("status.queued_n", lang, ahead=p.ahead) if p.ahead else texts.t("status.queued", lang)
    job = p.job
    if p.state == "loading" or (p.state == "running" and job is None and p.loading):
        return texts.t("status.loading", lang)
    if p.state == "running" and job is None:
        return texts.t("status.starting", lang)
    if p.state == "running" and job is not None:
        if job.images > 1:
            text = texts.t(
                "status.running_n", lang, image=job.image, images=job.images, step=job.step, steps=job.steps
            )
        else:
            text = texts.t("status.running", lang, step=job.step, steps=job.steps)
        parts = [text, texts.t("status.elapsed", lang, elapsed=duration(texts, lang, job.elapsed_s))]
        if job.eta_s is not None:
            parts.append(texts.t("status.eta", lang, eta=duration(texts, lang, job.eta_s)))
        return " · ".join(parts)
    if p.state == "cancelling":
        return texts.t("status.cancelling", lang)
    return p.message


def progress_html(texts: Texts, lang: str, progress: Progress | None) -> str:
    """A progress bar with its caption; empty when there is nothing to show."""
    if progress is None:
        return ""
    percent = round(progress.fraction * 100)
    return (
        f'<div class="is-progress" data-state="{escape(progress.state)}" data-step="{progress.step}" '
        f'data-steps="{progress.steps}" data-cancelling="{escape(texts.t("status.cancelling", lang))}" '
        'role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{percent}">'
        f'<div class="is-progress-track"><div class="is-progress-fill" style="width:{percent}%"></div></div>'
        f'<div class="is-progress-text">{escape(_progress_text(texts, lang, progress))}</div></div>'
    )


def error_html(message: str | None) -> str:
    """The red line shown under the control at fault (empty string: no error)."""
    if not message:
        return ""
    return f'<div class="is-error" role="alert">⚠ {escape(message)}</div>'


def note_html(message: str | None, kind: str = "info") -> str:
    if not message:
        return ""
    return f'<div class="is-note" data-kind="{escape(kind)}">{escape(message)}</div>'


def bar_html(label: str, used: float, total: float, caption: str) -> str:
    """A labelled horizontal meter (memory use)."""
    percent = 0 if total <= 0 else round(min(1.0, used / total) * 100)
    level = "high" if percent >= 90 else "mid" if percent >= 70 else "low"
    return (
        f'<div class="is-meter" data-level="{level}"><div class="is-meter-label">{escape(label)}</div>'
        f'<div class="is-progress-track"><div class="is-meter-fill" style="width:{percent}%"></div></div>'
        f'<div class="is-meter-caption">{escape(caption)}</div></div>'
    )


def table_html(rows: list[tuple[str, str]], css_class: str = "is-table") -> str:
    """A two-column table of already translated labels and values."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="{escape(css_class)}">{body}</table>'

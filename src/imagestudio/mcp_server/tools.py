"""The six tools, over the studio's one request path: arguments → request builder → job queue → History.

Every picture and every rewrite is a job of the shared queue (the same one the pages and the HTTP API use
when the tools are served on ``/mcp``; an in-process one under ``imagestudio mcp``, recorded in the same
History as the command line's jobs). Requests carry ``client: {"via": "mcp"}``, so History and each PNG's
metadata say where they came from. A call waits for its job, turning the job's events into progress
notifications, and cancels the job when the client cancels the call, goes away, or the wait passes
``server.request_timeout_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import mcp_types as types

from imagestudio.errors import ImageStudioError, InvalidRequest, JobCancelled, JobTimedOut, UserError
from imagestudio.jobs.aio import job_events
from imagestudio.jobs.model import JobState
from imagestudio.mcp_server import arguments as args
from imagestudio.mcp_server.pictures import open_picture
from imagestudio.mcp_server.results import image_results, settings_of, stored_image_result

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.history.store import HistoryStore
    from imagestudio.jobs.model import JobEvent, JobInfo, JobRequest
    from imagestudio.jobs.queue_protocol import JobBackend
    from imagestudio.storage.inputs import InputImage

log = logging.getLogger(__name__)

#: What every request made here records about its origin (History rows, PNG metadata).
CLIENT_RECORD = {"via": "mcp"}

Progress = Callable[[float, "float | None", "str | None"], Awaitable[None]]


@dataclass(frozen=True)
class ToolCall:
    """What one call brings besides its arguments: where progress goes, and which transport it came by."""

    #: ``report(progress, total, message)``: a notification when the client sent a progress token.
    report: Progress
    #: Image id → URL of the stored PNG; only over HTTP, where the URL means something to the client.
    url_of: Callable[[str], str] | None = None
    #: The queue's client tag (an address over HTTP: the per-client share applies).
    client: str | None = None
    #: Whether file paths name pictures: only on the user's own machine (stdio).
    local_files: bool = False


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    arguments: type[args._Arguments]
    read_only: bool


TOOLS = (
    ToolSpec(
        "generate_image",
        "Generate an image",
        "Draw pictures from a text prompt on this computer's own GPU (Z-Image-Turbo by default). Returns "
        "each picture (a downscaled copy when the full PNG is too large for a tool result), its seed, "
        "size and History id. The same seed and settings repeat a picture.",
        args.GenerateImageArguments,
        read_only=False,
    ),
    ToolSpec(
        "edit_image",
        "Edit images",
        "Edit 1 to 3 pictures with an instruction (Qwen-Image-Edit by default): call them Picture 1, "
        "Picture 2, Picture 3. Pictures are History ids, this server's image URLs, data: URLs or (stdio) "
        "file paths; with a mask, only its white part of the one picture is repainted.",
        args.EditImageArguments,
        read_only=False,
    ),
    ToolSpec(
        "improve_prompt",
        "Improve a prompt",
        "Rewrite a short prompt into a detailed one with a local model (no cloud): pass the result to "
        "generate_image or edit_image. The answer is in the prompt's language.",
        args.ImprovePromptArguments,
        read_only=True,
    ),
    ToolSpec(
        "list_models",
        "List models",
        "The models this studio knows: which are on disk, which are missing (and how big they are), the "
        "defaults, and whether each fits this machine's memory.",
        args.ListModelsArguments,
        read_only=True,
    ),
    ToolSpec(
        "search_history",
        "Search History",
        "Find earlier pictures by words of their prompt (newest first); gives ids for get_image and "
        "edit_image.",
        args.SearchHistoryArguments,
        read_only=True,
    ),
    ToolSpec(
        "get_image",
        "Get an image",
        "One History picture by id, with the prompt, seed and settings it was made with.",
        args.GetImageArguments,
        read_only=True,
    ),
)


class StudioTools:
    """The tools over one studio's settings, job queue and History (shared by stdio and HTTP)."""

    def __init__(self, settings: Settings, queue: JobBackend, history: HistoryStore) -> None:
        self.settings = settings
        self.queue = queue
        self.history = history

    def definitions(self) -> list[types.Tool]:
        return [
            types.Tool(
                name=spec.name,
                title=spec.title,
                description=spec.description,
                input_schema=spec.arguments.model_json_schema(),
                annotations=types.ToolAnnotations(
                    title=spec.title,
                    read_only_hint=spec.read_only,
                    destructive_hint=False,
                    open_world_hint=False,
                ),
            )
            for spec in TOOLS
        ]

    async def call(self, name: str, arguments: dict[str, Any] | None, call: ToolCall) -> types.CallToolResult:
        """Run a tool; a user's mistake or a failed job is an ``isError`` result of one line."""
        spec = next((tool for tool in TOOLS if tool.name == name), None)
        if spec is None:
            return error_result(f"no tool {name!r}; the tools are {', '.join(t.name for t in TOOLS)}")
        try:
            parsed = args.parse_arguments(spec.arguments, arguments)
            method: Callable[[Any, ToolCall], Awaitable[types.CallToolResult]] = getattr(self, f"_{name}")
            return await method(parsed, call)
        except UserError as exc:
            return error_result(exc.message)
        except ImageStudioError as exc:
            return error_result(str(exc))

    # ------------------------------------------------------------------ tools

    async def _generate_image(
        self, given: args.GenerateImageArguments, call: ToolCall
    ) -> types.CallToolResult:
        from imagestudio.job_requests import GenerateRequest

        def build() -> GenerateRequest:
            request = GenerateRequest.build(
                model=given.model or self.settings.server.auto_generate_model,
                prompt=given.prompt,
                width=given.width,
                height=given.height,
                steps=given.steps,
                seed=given.seed,
                count=given.count,
                weights=given.weights,
                client=dict(CLIENT_RECORD),
            ).resolved(self.settings)
            self._require_available(request.model)
            return request

        request = await anyio.to_thread.run_sync(build)
        return await self._image_job(request, call)

    async def _edit_image(self, given: args.EditImageArguments, call: ToolCall) -> types.CallToolResult:
        from imagestudio.job_requests import build_image_request

        def build() -> JobRequest:
            images = [self._picture(ref, f"images[{i}]", call) for i, ref in enumerate(given.images)]
            mask = self._picture(given.mask, "mask", call, purpose="mask") if given.mask else None
            server = self.settings.server
            model = given.model or (server.auto_inpaint_model if mask is not None else server.auto_edit_model)
            if model is None:
                raise InvalidRequest(
                    "no model inpaints here (server.auto_inpaint_model is null): name a Z-Image model, or "
                    "leave the mask out",
                    param="mask",
                )
            request = build_image_request(
                self.settings,
                model=model,
                prompt=given.prompt,
                images=images,
                mask=mask,
                width=given.width,
                height=given.height,
                steps=given.steps,
                seed=given.seed,
                count=given.count,
                weights=given.weights,
                client=dict(CLIENT_RECORD),
            )
            self._require_available(request.model)
            return request

        request = await anyio.to_thread.run_sync(build)
        return await self._image_job(request, call)

    async def _improve_prompt(
        self, given: args.ImprovePromptArguments, call: ToolCall
    ) -> types.CallToolResult:
        from imagestudio.job_requests import EnhanceRequest

        def build() -> EnhanceRequest:
            images = tuple(self._picture(ref, f"images[{i}]", call) for i, ref in enumerate(given.images))
            request = EnhanceRequest.build(
                prompt=given.prompt,
                model=given.model or self.settings.server.auto_generate_model,
                images=images,
                language=given.language,
                weights=given.weights,
            ).resolved(self.settings)
            self._require_available(request.model)
            return request

        request = await anyio.to_thread.run_sync(build)
        info = await self._run(request, call)
        details = await anyio.to_thread.run_sync(self.history.job_details, info.id)
        enhanced = ((details or {}).get("extra") or {}).get("enhanced")
        if enhanced is None:
            raise ImageStudioError("the rewrite finished without a result")
        text = enhanced["prompt"]
        if enhanced.get("warning"):
            text += (
                f"\n(The model's answer was unusable, so this is the original prompt: {enhanced['warning']})"
            )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            structured_content={
                key: enhanced.get(key)
                for key in ("prompt", "original_prompt", "model", "language", "seconds", "warning")
            },
        )

    async def _list_models(self, given: args.ListModelsArguments, call: ToolCall) -> types.CallToolResult:
        models = await anyio.to_thread.run_sync(self._model_facts)
        server = self.settings.server
        lines = [
            f"Defaults: generate {server.auto_generate_model}, edit {server.auto_edit_model}, "
            f"inpaint {server.auto_inpaint_model}."
        ]
        for model in models:
            size = (
                f"{model['download_bytes'] / 1e9:.1f} GB to download" if model["state"] == "missing" else ""
            )
            line = f"{model['id']} ({model['task']}): {model['state']}"
            if size:
                line += f", {size} (imagestudio models download {model['id']})"
            if model["fits"] is not None:
                line += f"; {model['plan']}"
            lines.append(line)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text="\n".join(lines))],
            structured_content={"models": models},
        )

    async def _search_history(
        self, given: args.SearchHistoryArguments, call: ToolCall
    ) -> types.CallToolResult:
        page = await anyio.to_thread.run_sync(
            lambda: self.history.list_images(given.words, limit=given.limit, offset=0)
        )
        items = []
        lines = [
            f"{page.total} image(s) match; the newest {len(page.items)}:"
            if page.total
            else "No images match."
        ]
        for record in page.items:
            url = call.url_of(record.id) if call.url_of is not None else None
            made = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_at))
            lines.append(
                f"{record.id}: {record.prompt!r} · {record.model} · seed {record.seed} · "
                f"{record.width}x{record.height} · {made}"
            )
            items.append(
                {
                    "id": record.id,
                    "prompt": record.prompt,
                    "model": record.model,
                    "seed": record.seed,
                    "width": record.width,
                    "height": record.height,
                    "created": made,
                    "url": url,
                }
            )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text="\n".join(lines))],
            structured_content={"total": page.total, "images": items},
        )

    async def _get_image(self, given: args.GetImageArguments, call: ToolCall) -> types.CallToolResult:
        from imagestudio.storage.saved_image import SavedImage

        def load() -> types.CallToolResult:
            record = self.history.get_image(given.id)
            path = self.history.image_file(given.id)
            if record is None or path is None:
                raise InvalidRequest(f"no image {given.id!r} in History", param="id", code="image_not_found")
            image = SavedImage(record.id, path, record.seed, record.width, record.height)
            facts = {
                "prompt": record.prompt,
                "model": record.model,
                "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_at)),
                "settings": settings_of(record.metadata),
            }
            url = call.url_of(record.id) if call.url_of is not None else None
            return stored_image_result(image, facts, max_image_kb=self.settings.mcp.max_image_kb, url=url)

        return await anyio.to_thread.run_sync(load)

    # ------------------------------------------------------------------ the job path

    async def _image_job(self, request: JobRequest, call: ToolCall) -> types.CallToolResult:
        info = await self._run(request, call)
        if not info.images:
            raise ImageStudioError("the job finished without images")
        note = None
        client = info.request.get("client") or {}
        if client.get("model"):
            note = f"(Asked for {client['model']}; ran {info.model}.)"
        return await anyio.to_thread.run_sync(
            lambda: image_results(
                info, max_image_kb=self.settings.mcp.max_image_kb, url_of=call.url_of, note=note
            )
        )

    async def _run(self, request: JobRequest, call: ToolCall) -> JobInfo:
        """Submit ``request`` and wait for it, reporting progress; the job is cancelled if the call ends
        any other way (the client cancelled it, went away, or the wait timed out)."""
        job = await anyio.to_thread.run_sync(lambda: self.queue.submit(request, call.client))
        finished = False
        try:
            info = await self._wait(job.id, call)
            finished = True
        finally:
            if not finished:
                self.queue.cancel(job.id)
        if info.state is JobState.DONE:
            return info
        error = info.error
        if info.state is JobState.CANCELLED:
            raise JobCancelled(f"the job was cancelled ({error.message if error else 'cancelled'})")
        message = error.message if error is not None else f"the job ended {info.state.value}"
        if error is not None and error.http_status < 500:
            raise UserError(message, code=error.code)
        raise ImageStudioError(message)

    async def _wait(self, job_id: str, call: ToolCall) -> JobInfo:
        timeout_s = self.settings.server.request_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        progress = _ProgressReporter(call.report)
        async with job_events(self.queue, job_id) as events:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise JobTimedOut(
                        f"the job did not finish within {timeout_s:g} s (server.request_timeout_s) and was "
                        "cancelled",
                        code="timed_out",
                        details={"seconds": f"{timeout_s:g}"},
                    )
                try:
                    event = await asyncio.wait_for(events.get(), remaining)
                except asyncio.TimeoutError:
                    continue
                if event.terminal:
                    assert event.info is not None
                    return event.info
                await progress.send(event)

    # ------------------------------------------------------------------ helpers

    def _picture(self, reference: str, field: str, call: ToolCall, purpose: Any = "image") -> InputImage:
        return open_picture(
            reference,
            field=field,
            settings=self.settings,
            history=self.history,
            local_files=call.local_files,
            purpose=purpose,
        )

    def _require_available(self, model_id: str) -> None:
        """Refuse a model that is not on disk now, with the command that fetches it, not after a wait."""
        from imagestudio.models.locate import find_model_dir, not_available
        from imagestudio.registry import get_model

        spec = get_model(model_id)
        if not spec.tiny and find_model_dir(spec, self.settings, build_tiny=False) is None:
            raise not_available(spec)

    def _model_facts(self) -> list[dict[str, Any]]:
        from imagestudio.doctor import model_report
        from imagestudio.hardware import probe_hardware
        from imagestudio.models.state import list_states
        from imagestudio.registry import get_model

        hardware = probe_hardware(self.settings.device.type, self.settings.models_dir)
        facts = []
        for state in list_states(self.settings):
            spec = get_model(state.id)
            entry: dict[str, Any] = {
                "id": state.id,
                "title": state.title,
                "task": state.task,
                "state": state.state,
                "download_bytes": state.download_bytes,
                "weights": [variant.name for variant in spec.weight_variants],
                "fits": None,
                "plan": None,
            }
            if not spec.tiny:
                try:
                    plan = model_report(spec, self.settings, hardware, hardware.accelerator).plan
                except ImageStudioError as exc:
                    entry["plan"] = f"no memory plan: {exc}"
                else:
                    entry["fits"] = plan.fits
                    verdict = "fits this machine" if plan.fits else "does not fit this machine"
                    entry["plan"] = f"{verdict} ({plan.describe()})"
            facts.append(entry)
        return facts


class _ProgressReporter:
    """Job events as progress notifications that only ever increase, counted in denoising steps: 0 while
    queued, 0.5 once started (the model may be loading), then each step."""

    def __init__(self, report: Progress) -> None:
        self._report = report
        self._last: float | None = None

    async def send(self, event: JobEvent) -> None:
        total: float | None = None
        if event.type == "queued":
            position = event.data.get("position") or event.data.get("queue_position")
            progress, message = 0.0, f"waiting in the queue (place {position})" if position else "queued"
        elif event.type == "started":
            progress, message = 0.5, "started (loading the model if it is not loaded yet)"
        elif event.type == "step":
            step = event.data
            total = float(step["images"] * step["steps"])
            progress = float((step["image"] - 1) * step["steps"] + step["step"])
            message = f"image {step['image']}/{step['images']} · step {step['step']}/{step['steps']}"
        else:
            return
        if self._last is not None and progress <= self._last:
            return
        self._last = progress
        await self._report(progress, total, message)


def error_result(message: str) -> types.CallToolResult:
    """A refusal or failure as the tool's result (``isError``): one line the model can read and act on."""
    from imagestudio.quoting import clip_message

    return types.CallToolResult(
        content=[types.TextContent(type="text", text=clip_message(message))], is_error=True
    )

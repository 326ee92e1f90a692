"""The Typer app and what every command shares: options, error handling, settings, output."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from imagestudio.errors import ImageStudioError, UserError

if TYPE_CHECKING:
    from imagestudio.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="imagestudio",
    help="A local studio for Z-Image-Turbo (text-to-image) and Qwen-Image-Edit-2511 (image editing).",
    no_args_is_help=True,
    # --install-completion / --show-completion; shell detection runs only when they are used.
    add_completion=True,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="config.yaml to use (else $IMAGESTUDIO_CONFIG, ./config.yaml, ~/.imagestudio/config.yaml, "
        "then the user config folder).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def fail(message: str, code: int, error: BaseException | None = None, as_json: bool = False) -> None:
    """End the command with one line on stderr, or, under ``--json``, one JSON object on stdout.

    A script that asked for JSON parses stdout; an error it cannot parse there is an error it misses.
    The object has the API's error shape, so one parser serves both.
    """
    from imagestudio.quoting import clip_message

    message = clip_message(message)
    if as_json:
        typer.echo(json.dumps({"error": error_object(message, error), "exit_code": code}, ensure_ascii=False))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def error_object(message: str, error: BaseException | None) -> dict[str, Any]:
    """``{"message", "type", "param", "code"}`` as the HTTP API's errors have them."""
    if isinstance(error, UserError):
        return {"message": message, "type": error.error_type, "param": error.param, "code": error.code}
    kind = "interrupted" if isinstance(error, KeyboardInterrupt) else "server_error"
    return {"message": message, "type": kind, "param": None, "code": getattr(error, "code", None)}


def friendly_errors(func: F) -> F:
    """User errors become one line and exit 2; other deliberate errors one line and exit 1. With
    ``--json`` (a command's ``as_json`` parameter) the line is a JSON object on stdout instead."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            fail(exc.message, 2, exc, as_json)
        except ImageStudioError as exc:
            fail(str(exc), 1, exc, as_json)
        except KeyboardInterrupt as exc:
            fail("interrupted", 130, exc, as_json)
        return None

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _print_version(value: bool) -> None:
    if value:
        from imagestudio import __version__

        typer.echo(f"imagestudio {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what is loaded and where.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    setup_logging(verbose)


def load_config(config: Path | None) -> Settings:
    from imagestudio.config import load_settings

    return load_settings(config)


def print_result(result: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
        return
    for image in result.images:
        typer.echo(str(image.path))

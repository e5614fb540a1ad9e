"""What every command-line tool does: its parser, ``--log``, its program name, running it.

A tool's ``main`` is :func:`tool_main`: it parses the command line, sets up
logging and runs the tool's coroutine on uvloop (where installed), turning
errors from the operating system or the library into one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from ._arguments import parse_log_level

__all__ = [
    "add_log_argument",
    "error_message",
    "make_parser",
    "prog_name",
    "run_main",
    "setup_logging",
    "tool_main",
]


def make_parser(
    prog: str | None,
    description: str,
    examples: Iterable[tuple[str, str]] = (),
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows ``description`` as written, then ``examples``.

    Both are plain text for a terminal (the module docstrings, with their
    markup, are for the documentation); ``examples`` are ``(command, what it
    does)`` pairs.
    """
    examples = list(examples)
    width = max((len(command) for command, _ in examples), default=0)
    lines = [f"  {command:<{width}}  # {what}" for command, what in examples]
    epilog = "examples:\n" + "\n".join(lines) if lines else None
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs,
    )


def add_log_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--log LEVEL`` (default INFO)."""
    parser.add_argument(
        "--log", metavar="LEVEL", type=parse_log_level, default="INFO", help="Log level [INFO]"
    )


def setup_logging(level: str) -> None:
    """Log to stderr as ``LEVEL:logger:message``, like the reference tools."""
    logging.basicConfig(level=getattr(logging, level))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on some platforms
        return None
    return uvloop.new_event_loop


def prog_name(default: str) -> str:
    """The program name for messages: the script's name when run as one, else ``default``.

    Under ``python -m spead2.tools.send`` ``sys.argv[0]`` is the module's
    path, which would make a misleading name.
    """
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name.startswith("spead2_") else default


def run_main(prog: str, coro: Coroutine[Any, Any, int]) -> int:
    """Run a tool's main coroutine on uvloop (where installed) and return its exit status.

    Errors from the operating system or the library's argument checks (a
    refused connection, an address in use, a non-multicast ``--ttl``
    target…) and a missing optional package end the tool with
    ``<prog>: error: <message>`` and status 1, rather than a traceback.
    """
    try:
        return asyncio.run(coro, loop_factory=_loop_factory())
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        print(f"{prog}: error: {error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # tools that do not handle SIGINT themselves
        return 1


def error_message(exc: BaseException) -> str:
    """What an error says to a person: its message, without the exception's class name.

    An ``OSError`` says its reason without the ``[Errno N]`` prefix, naming
    the file if there is one.
    """
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or f"{type(exc).__name__} (no details)"


def tool_main(
    default_prog: str,
    parse_args: Callable[[list[str] | None, str], argparse.Namespace],
    async_main: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
    argv: list[str] | None,
) -> int:
    """A tool's entry point: parse ``argv``, set up ``--log``, run ``async_main(args)``.

    ``args.prog`` is the program name for the tool's own messages
    (:func:`prog_name`); the result is the exit status.
    """
    prog = prog_name(default_prog)
    args = parse_args(argv, prog)
    args.prog = prog
    setup_logging(args.log)
    return run_main(prog, async_main(args))

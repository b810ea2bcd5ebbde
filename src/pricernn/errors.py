"""User errors: bad input or options that end a run with one clear line, never a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

log = logging.getLogger("pricernn")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Something the user can fix: a missing file, a wrong column, an impossible option.

    The message must name the file, column, row or option at fault, in one line.
    """


def check(condition: bool, message: str) -> None:
    """Raise a UserError with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (or its type), for one-line user messages."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else type(err).__name__


def debug_enabled() -> bool:
    """Full tracebacks are wanted (``PRICERNN_DEBUG=1`` or ``--debug`` on a script's command line)."""
    return os.environ.get("PRICERNN_DEBUG", "") not in ("", "0") or "--debug" in sys.argv


def strip_debug_flag() -> None:
    """Remove ``--debug`` from sys.argv (Hydra would reject it) after turning it into PRICERNN_DEBUG."""
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
        os.environ["PRICERNN_DEBUG"] = "1"


def exit_on_user_error(func: F) -> F:
    """Turn a UserError raised by ``func`` into one line on stderr and exit status 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as err:
            if debug_enabled():
                raise
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapper  # type: ignore[return-value]

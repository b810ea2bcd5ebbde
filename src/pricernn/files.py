"""Run artifacts are written whole or not at all."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: a crash never leaves a truncated file behind."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON, whole or not at all, with NaN and infinities as null: Python writes them as
    ``NaN``, which is not JSON, and strict readers (JavaScript, jq) refuse the file."""

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    write_atomic(path, json.dumps(plain(data), indent=2, allow_nan=False) + "\n")

"""Writing rendered files into the export directory: staged on the target's own file
system (it may be a mount point), then moved into place, so nothing is half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping

from procrun.errors import UsageError
from procrun.export import File


def write(files: Mapping[str, File], target: str) -> list[str]:
    """Write ``files`` (relative path -> File) under ``target``; returns the paths written."""
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".procrun-export-", dir=target if os.path.isdir(target) else parent)
    except OSError as exc:
        raise UsageError(f"cannot write to {target}: {exc.strerror}; choose a directory you can write") from None
    try:
        _stage(files, staging)
        if not os.path.exists(target):
            os.rename(staging, target)
            staging = ""
        else:
            _move_in(files, staging, target)
    except OSError as exc:
        raise UsageError(f"cannot write to {target}: {exc.strerror}; choose a directory you can write") from None
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
    return [os.path.join(target, rel) for rel in files]


def _stage(files: Mapping[str, File], staging: str) -> None:
    for rel, file in files.items():
        path = os.path.join(staging, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(file.content)
        os.chmod(path, file.mode)


def _move_in(files: Mapping[str, File], staging: str, target: str) -> None:
    if not os.path.isdir(target):
        raise UsageError(f"{target} exists and is not a directory; choose another export directory")
    for rel in files:
        destination = os.path.join(target, rel)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        os.replace(os.path.join(staging, rel), destination)

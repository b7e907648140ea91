"""Atomic writes and keyed caches: an interrupted run never leaves a half-written file behind.

Every cache file is first written to a temporary file in the same folder and then moved into
place with :func:`os.replace`, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it onto ``target`` only on success.

    Parameters
    ----------
    target
        The final file path.
    suffix
        Suffix of the temporary file (defaults to the target's suffix, so writers that infer the
        format from the extension, such as ``keras.Model.save``, keep working).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
    >>> with atomic_path(out) as tmp:
    ...     np.save(tmp, np.arange(3))
    >>> np.load(out).tolist()
    [0, 1, 2]
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix,
        dir=target.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp creates 0600; give the file the usual permissions
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(target: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``target`` atomically."""
    atomic_write_bytes(target, json.dumps(obj, indent=2, sort_keys=True).encode())


def key_of(settings: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable settings dict (the cache key).

    Examples
    --------
    >>> key_of({"a": 1, "b": [2, 3]}) == key_of({"b": [2, 3], "a": 1})
    True
    """
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_file(target: str | os.PathLike, build: Callable[[Path], None]) -> Path:
    """Return ``target``, first building it with ``build(tmp_path)`` if it does not exist (or
    is empty).

    ``build`` writes to the temporary path it is given; the result is moved into place only when
    ``build`` returns having written something, so an interrupted build leaves no file at
    ``target`` and a build that writes nothing raises instead of caching an empty file forever.
    """
    target = Path(target)
    if not target.is_file() or target.stat().st_size == 0:
        with atomic_path(target) as tmp:
            build(tmp)
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise RuntimeError(
                    f"Building {target} wrote nothing, so nothing was cached; the build "
                    "function must write the file at the path it is given."
                )
    return target

"""Results written as numbered shard files as they are computed, resumable after an interruption.

A long run over a whole test split (maps of every image, their deletion scores) writes one
``.npz`` file per shard of consecutive images into a folder ``out``:

- ``manifest.json`` records what is computed (kind, method, options, model identity, shard
  size, number of images) before the first shard. A second run into the same folder with other
  settings raises :class:`ManifestMismatch`, which says what differs: delete the folder or
  choose another ``out``. With the same settings it resumes: finished shards are kept, only the
  missing ones are computed.
- Every shard is written to a temporary file in the same folder and moved into place with
  ``os.replace`` (:func:`course_utils.cache.atomic_path`): a killed run never leaves a
  half-written ``shard-*.npz``. Temporary files a killed process could not remove
  (``.shard-*``) are deleted when the folder is opened again.
- Shards hold plain numeric or string arrays (``np.savez``), never pickles; they are read with
  ``allow_pickle=False``.

Examples
--------
>>> import tempfile, numpy as np
>>> folder = ShardFolder(tempfile.mkdtemp() + "/run", {"kind": "demo", "settings": {"a": 1}})
>>> folder.write(0, values=np.arange(3))
>>> folder.done(0), folder.done(1), folder.read(0)["values"].tolist()
(True, False, [0, 1, 2])
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from course_utils.cache import atomic_path, atomic_write_json

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1
#: Manifest keys that change as a run progresses (not compared when resuming).
PROGRESS_KEYS = ("n_shards", "complete")


class ManifestMismatch(ValueError):
    """``out`` holds results computed with other settings than the ones asked for."""


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard-00000.npz``, ``shard-00001.npz``...

    Examples
    --------
    >>> shard_name(12)
    'shard-00012.npz'
    """
    return f"shard-{index:05d}.npz"


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two JSON values (nested dicts walked by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{where}: not in the folder's manifest, now {new[key]!r}")
            elif key not in new:
                out.append(f"{where}: {old[key]!r} in the folder's manifest, not set now")
            else:
                out.extend(_differences(old[key], new[key], where))
        return out
    return [] if old == new else [f"{prefix}: {old!r} in the folder's manifest, now {new!r}"]


def jsonable(value: Any) -> Any:
    """``value`` as JSON for a manifest: arrays become their shape, dtype and SHA-256 (so that
    a different baseline array is noticed), tuples lists, NumPy scalars Python numbers.

    Examples
    --------
    >>> jsonable({"window": (4, 4), "n": np.int64(3)})
    {'window': [4, 4], 'n': 3}
    """
    import hashlib

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) or hasattr(value, "numpy"):
        arr = np.ascontiguousarray(np.asarray(value))
        return {"array": list(arr.shape), "dtype": str(arr.dtype),
                "sha256": hashlib.sha256(arr.tobytes()).hexdigest()[:16]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"Cannot record the option value {value!r} ({type(value).__name__}) in the manifest; "
        "give numbers, strings, tuples or arrays."
    )


class ShardFolder:
    """The folder of one sharded run: its manifest and its ``shard-*.npz`` files.

    Parameters
    ----------
    out
        The folder (created if needed). An existing file there is an error.
    manifest
        ``{"kind": ..., "settings": {...}}`` as JSON values: what the shards hold. Compared with
        the manifest already in the folder (:class:`ManifestMismatch` if they differ) or
        written there.
    writer
        False on the non-chief workers of a multi-worker run: they compute but never write.
    """

    def __init__(self, out: str | os.PathLike, manifest: dict, *, writer: bool = True):
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise NotADirectoryError(
                f"out={str(self.out)!r} is a file; give a folder (it is created if needed) "
                "where the shards and manifest.json are written."
            )
        self.writer = writer
        self.manifest = {"format": FORMAT, **manifest}
        path = self.out / MANIFEST
        if path.is_file():
            old = json.loads(path.read_text())
            self._compare(old)
            self.manifest = {**old, **self.manifest}
        elif writer:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, self.manifest)
        if writer:
            self._remove_stale_temporaries()

    def _compare(self, old: dict) -> None:
        keep = {k: v for k, v in old.items() if k not in PROGRESS_KEYS}
        diffs = _differences(keep, self.manifest)
        if diffs:
            listed = "\n  ".join(diffs)
            raise ManifestMismatch(
                f"{self.out} holds results computed with other settings:\n  {listed}\n"
                "Resuming would mix the two. Delete the folder to start again with the new "
                "settings, or choose another out."
            )

    def _remove_stale_temporaries(self) -> None:
        stale = sorted(self.out.glob(".shard-*"))
        for tmp in stale:
            tmp.unlink(missing_ok=True)
        if stale:
            logger.info("Removed %d temporary file(s) left by an interrupted run in %s.",
                        len(stale), self.out)

    def path(self, index: int) -> Path:
        """Path of shard ``index``."""
        return self.out / shard_name(index)

    def done(self, index: int) -> bool:
        """True when shard ``index`` was written completely (it exists: writes are atomic)."""
        return self.path(index).is_file()

    def write(self, index: int, **arrays: np.ndarray) -> None:
        """Write shard ``index`` atomically (temporary file + ``os.replace``).

        Raises ``TypeError`` for object arrays (they would need a pickle).
        """
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        for key, arr in arrays.items():
            if arr.dtype == object:
                raise TypeError(f"Shard array {key!r} has dtype object; shards hold numbers "
                                "or strings only (no pickles).")
        if not self.writer:
            return
        with atomic_path(self.path(index)) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    def read(self, index: int) -> dict[str, np.ndarray]:
        """The arrays of shard ``index`` (loaded without pickles)."""
        with np.load(self.path(index), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def finish(self, n_shards: int) -> None:
        """Record that the run completed with ``n_shards`` shards."""
        self.manifest.update(n_shards=int(n_shards), complete=True)
        if self.writer:
            atomic_write_json(self.out / MANIFEST, self.manifest)


class Sharded:
    """What a sharded run returns: the folder, and which shards this call computed.

    Attributes
    ----------
    out
        The folder.
    manifest
        Its manifest (settings, ``n_shards``).
    computed
        Indices of the shards computed by this call (the others were already on disk).

    Examples
    --------
    >>> import tempfile
    >>> folder = ShardFolder(tempfile.mkdtemp() + "/run", {"kind": "demo", "settings": {}})
    >>> folder.write(0, v=np.zeros(2)); folder.write(1, v=np.ones(1)); folder.finish(2)
    >>> Sharded.open(folder.out).load("v").tolist()
    [0.0, 0.0, 1.0]
    """

    def __init__(self, folder: ShardFolder, computed: list[int] | None = None):
        self.folder = folder
        self.computed = list(computed or [])

    @classmethod
    def open(cls, out: str | os.PathLike) -> Sharded:
        """The results of a finished run in folder ``out``."""
        path = Path(out) / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"No {MANIFEST} in {out}: not the folder of a sharded run.")
        manifest = json.loads(path.read_text())
        return cls(ShardFolder(out, {k: v for k, v in manifest.items()
                                     if k not in PROGRESS_KEYS}, writer=False))

    @property
    def out(self) -> Path:
        return self.folder.out

    @property
    def manifest(self) -> dict:
        return self.folder.manifest

    @property
    def n_shards(self) -> int:
        """Number of shards of the finished run."""
        if not self.manifest.get("complete"):
            raise RuntimeError(f"The run in {self.out} did not finish; run it again to resume.")
        return int(self.manifest["n_shards"])

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        """The shards' arrays, one dict per shard, in order (memory: one shard at a time)."""
        for i in range(self.n_shards):
            yield self.folder.read(i)

    def load(self, name: str) -> np.ndarray:
        """Array ``name`` of every shard, concatenated (all of it in memory)."""
        return np.concatenate([shard[name] for shard in self])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.out)!r}, kind={self.manifest.get('kind')!r}, "
                f"computed {len(self.computed)} shard(s))")

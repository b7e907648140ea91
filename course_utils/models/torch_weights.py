"""Read a PyTorch state dict (legacy, non-zip serialization) into NumPy arrays, without PyTorch
and without letting the file run code.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``) is a sequence of
pickles followed by raw data:

1. a magic number, 2. the protocol version (1001), 3. system information (byte order, sizes),
4. the state dict, its tensors pickled as ``torch._utils._rebuild_tensor_v2(storage, offset,
   size, stride, ...)`` with each storage a *persistent id* ``("storage", torch.FloatStorage,
   key, device, numel, view)``,
5. the list of storage keys, then for each key an 8-byte little-endian element count and the
   storage's raw little-endian bytes.

A pickle can name any importable callable and make the reader call it (``os.system``,
``builtins.eval``, ...). :func:`read_torch_state_dict` therefore unpickles with a restricted
unpickler that admits only the globals a state dict needs (``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` type names, all mapped to local
stand-ins: nothing is imported) and refuses every other global with an error that names it.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

#: ``torch.<name>Storage`` -> the little-endian NumPy dtype of its elements.
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class TorchFileError(ValueError):
    """A file is not a readable legacy PyTorch state dict (truncated, altered, another format),
    or its pickle names a global that is not allowed."""


# The objects a pickle can reach are immutable: no ``__dict__`` (slots), frozen, and a
# ``__setstate__`` that refuses, so a pickle's BUILD opcode cannot change them, nor the
# module-level ones that later reads share.


class _Immutable:
    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"refused to set the state of {type(self).__name__}")


@dataclass(frozen=True, slots=True)
class _StorageType(_Immutable):
    name: str

    __setstate__ = _Immutable.__setstate__

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass(frozen=True, slots=True)
class _Storage(_Immutable):
    key: str
    dtype: np.dtype
    numel: int

    __setstate__ = _Immutable.__setstate__


@dataclass(frozen=True, slots=True)
class _PendingTensor(_Immutable):
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    __setstate__ = _Immutable.__setstate__


def _valid_geometry(offset, size, stride) -> bool:
    return (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
            and all(type(v) is int and v >= 0 for v in (offset, *size, *stride)))


class _RebuildTensor(_Immutable):
    """Local stand-in for ``torch._utils._rebuild_tensor_v2``: records where the tensor lies."""

    __slots__ = ()

    def __call__(self, storage, storage_offset, size, stride, requires_grad=False,
                 backward_hooks=None, metadata=None):
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError("_rebuild_tensor_v2 called without a storage")
        if not _valid_geometry(storage_offset, size, stride):
            raise pickle.UnpicklingError(f"invalid tensor geometry {size!r:.40} / {stride!r:.40}")
        return _PendingTensor(storage, storage_offset, size, stride)


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _RebuildTensor(),
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`_ALLOWED` globals and legacy storage ids."""

    def __init__(self, fh, path: Path, storages: dict[str, _Storage] | None = None):
        super().__init__(fh)
        self._path = path
        self._storages = storages

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED)
            raise TorchFileError(
                f"{self._path}: refused to load the global {module}.{name}: a state dict needs "
                f"only {allowed}. The file may be malicious (a pickle can run any code it "
                "names) or not a plain state dict; nothing in it was executed."
            ) from None

    def persistent_load(self, pid):
        if self._storages is None:
            raise pickle.UnpicklingError("unexpected persistent id")
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise pickle.UnpicklingError(f"unsupported storage {pid!r:.80}")
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"invalid storage size {numel!r}")
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = _Storage(key, storage_type.dtype, numel)
        elif storage.numel != numel or storage.dtype != storage_type.dtype:
            raise pickle.UnpicklingError(f"storage {key} declared twice differently")
        return storage


def _materialize(t: _PendingTensor, data: np.ndarray) -> np.ndarray:
    if not _valid_geometry(t.offset, t.size, t.stride):
        raise pickle.UnpicklingError("invalid tensor geometry")
    native = data.dtype.newbyteorder("=")
    if any(n == 0 for n in t.size):
        return np.zeros(t.size, dtype=native)
    last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
    if last >= data.size:
        raise pickle.UnpicklingError(
            f"tensor of size {t.size} reaches element {last} of a storage of {data.size}"
        )
    item = data.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[t.offset:], shape=t.size, strides=tuple(s * item for s in t.stride), writeable=False
    )
    return np.array(view, dtype=native, order="C")


def read_torch_state_dict(path: str | os.PathLike,
                          sha256: str | None = None) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict saved in the legacy (non-zip) format, without PyTorch.

    Only the globals a state dict needs are admitted (``collections.OrderedDict``,
    ``torch._utils._rebuild_tensor_v2``, ``torch.*Storage``); any other global makes it raise
    :class:`TorchFileError` naming that global, before anything is called.

    Parameters
    ----------
    path
        The ``.pth`` file.
    sha256
        If given, the file's SHA-256 hex digest must match before it is read.

    Returns
    -------
    dict[str, numpy.ndarray]
        Parameter and buffer name -> array, in the file's order (C-contiguous, native byte
        order).

    Raises
    ------
    TorchFileError
        The checksum differs, the file is truncated, of another format, or names a global that
        is not allowed. The message names the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from course_utils.models.torch_weights import write_legacy_state_dict
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "w.pth"
    >>> write_legacy_state_dict(p, {"fc.weight": np.arange(6, dtype="float32").reshape(2, 3)})
    >>> read_torch_state_dict(p)["fc.weight"].tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    """
    path = Path(path)
    raw = path.read_bytes()
    if sha256 is not None:
        import hashlib

        got = hashlib.sha256(raw).hexdigest()
        if got != sha256.lower():
            raise TorchFileError(
                f"{path}: SHA-256 is {got}, expected {sha256}: the file is altered or "
                "incomplete. Reinstall the package that provides it."
            )
    if raw[:2] == b"PK":
        raise TorchFileError(
            f"{path}: this is PyTorch's zip serialization; only the legacy (non-zip) format is "
            "read here."
        )
    fh = io.BytesIO(raw)
    try:
        magic = _RestrictedUnpickler(fh, path).load()
        if magic != MAGIC_NUMBER:
            raise TorchFileError(f"{path}: not a legacy PyTorch file (wrong magic number).")
        version = _RestrictedUnpickler(fh, path).load()
        if version != PROTOCOL_VERSION:
            raise TorchFileError(f"{path}: unsupported PyTorch protocol version {version!r}.")
        sys_info = _RestrictedUnpickler(fh, path).load()
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
            raise TorchFileError(f"{path}: only little-endian files are supported.")
        storages: dict[str, _Storage] = {}
        data: dict[str, np.ndarray] = {}
        result = _RestrictedUnpickler(fh, path, storages).load()
        keys = _RestrictedUnpickler(fh, path).load()
        if not isinstance(keys, list) or sorted(keys) != sorted(storages):
            raise TorchFileError(f"{path}: the storage list does not match the tensors.")
        for key in keys:
            s = storages[key]
            head = fh.read(8)
            if len(head) != 8:
                raise EOFError
            (count,) = struct.unpack("<q", head)
            if count != s.numel:
                raise TorchFileError(
                    f"{path}: storage {key} holds {count} elements, {s.numel} declared."
                )
            nbytes = count * s.dtype.itemsize
            body = fh.read(nbytes)
            if len(body) != nbytes:
                raise EOFError
            data[key] = np.frombuffer(body, dtype=s.dtype)
        if fh.read(1):
            raise TorchFileError(f"{path}: unexpected data after the last storage.")
        if not isinstance(result, dict):
            raise TorchFileError(f"{path}: holds a {type(result).__name__}, not a state dict.")
        out = {}
        for name, value in result.items():
            if (not isinstance(name, str) or not isinstance(value, _PendingTensor)
                    or storages.get(value.storage.key) is not value.storage):
                raise TorchFileError(f"{path}: entry {name!r:.60} is not a tensor.")
            out[name] = _materialize(value, data[value.storage.key])
        return out
    except TorchFileError:
        raise
    except (EOFError, pickle.UnpicklingError, struct.error, ValueError, TypeError,
            KeyError, IndexError, AttributeError, MemoryError) as exc:
        why = str(exc) or "it ends too early"
        raise TorchFileError(
            f"{path}: not a readable PyTorch state dict ({type(exc).__name__}: {why}). The file "
            "is truncated or altered; reinstall the package that provides it."
        ) from None


@dataclass(frozen=True)
class _GlobalRef:
    """A name to write as a pickle GLOBAL (``torch.FloatStorage``) without importing it."""

    module: str
    name: str

    def __call__(self, *args):  # the pickler wants a callable; the name is all it writes
        raise TypeError(f"{self.module}.{self.name} is only a name to pickle")


class _FakeTensor:
    """Pickles like a torch tensor in the legacy format (for :func:`write_legacy_state_dict`)."""

    def __init__(self, storage: _Storage, array: np.ndarray):
        self.storage, self.array = storage, array

    def __reduce__(self):
        item = self.array.itemsize
        stride = tuple(s // item for s in self.array.strides)
        return (_GlobalRef("torch._utils", "_rebuild_tensor_v2"),
                (self.storage, 0, self.array.shape, stride, False, collections.OrderedDict()))


class _LegacyPickler(pickle._Pickler):  # noqa: SLF001 - the Python pickler has a dispatch table
    dispatch = dict(pickle._Pickler.dispatch)  # noqa: SLF001

    def _save_ref(self, obj: _GlobalRef) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_GlobalRef] = _save_ref

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            kind = next(k for k, v in STORAGE_DTYPES.items() if np.dtype(v) == obj.dtype)
            return ("storage", _GlobalRef("torch", kind), obj.key, "cpu", obj.numel, None)
        return None


def write_legacy_state_dict(path: str | os.PathLike, state: dict[str, np.ndarray]) -> None:
    """Write ``state`` as PyTorch's legacy (non-zip) serialization, without PyTorch.

    For tests and examples: a file :func:`read_torch_state_dict` (and ``torch.load``) can read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "bn.pth"
    >>> write_legacy_state_dict(p, {"bn.running_var": np.ones(3, "float32")})
    >>> read_torch_state_dict(p)["bn.running_var"].shape
    (3,)
    """
    storages, tensors = [], collections.OrderedDict()
    for i, (name, value) in enumerate(state.items()):
        arr = np.array(value, order="C")  # keeps 0-d arrays 0-d
        arr = arr.astype(arr.dtype.newbyteorder("<"))
        s = _Storage(str(i), arr.dtype, arr.size)
        storages.append((s, arr))
        tensors[name] = _FakeTensor(s, arr)
    with open(path, "wb") as fh:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION,
                       {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                        "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, fh, protocol=2)
        _LegacyPickler(fh, protocol=2).dump(tensors)
        pickle.dump([s.key for s, _ in storages], fh, protocol=2)
        for s, arr in storages:
            fh.write(struct.pack("<q", s.numel))
            fh.write(arr.tobytes())

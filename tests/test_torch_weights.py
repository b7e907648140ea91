"""The PyTorch state-dict reader: reads what a legacy torch.save writes, refuses pickles that
name anything but a state dict's globals (and runs nothing), and names the file when the file
is truncated or altered."""

from __future__ import annotations

import hashlib
import os
import pickle
import struct

import numpy as np
import pytest

from course_utils import models
from course_utils.models import torch_weights
from course_utils.models.torch_weights import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    TorchFileError,
    read_torch_state_dict,
    write_legacy_state_dict,
)


def _state():
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.normal(size=(4, 3, 3, 3)).astype("float32"),
        "bn.running_var": rng.uniform(0.5, 2, 4).astype("float32"),
        "bn.num_batches_tracked": np.array(7, dtype="int64"),
        "fc.weight": rng.normal(size=(5, 4)).astype("float64"),
        "mask": np.array([True, False, True]),
    }


def test_reads_back_what_was_written_dtypes_shapes_and_values(tmp_path):
    path = tmp_path / "w.pth"
    state = _state()
    write_legacy_state_dict(path, state)
    got = read_torch_state_dict(path)
    assert list(got) == list(state)
    for name, value in state.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        np.testing.assert_array_equal(got[name], value)
    assert got["bn.num_batches_tracked"].ndim == 0 and int(got["bn.num_batches_tracked"]) == 7


def test_public_name_is_the_same_function():
    assert models.read_torch_state_dict is read_torch_state_dict


def test_non_contiguous_tensor_views_follow_their_strides(tmp_path):
    """A tensor saved as a transposed view: size (4, 3) with stride (1, 4), not C order."""
    path = tmp_path / "t.pth"
    base = np.arange(12, dtype="float32").reshape(3, 4)
    write_legacy_state_dict(path, {"t": base})
    raw = path.read_bytes()
    size, stride = b"K\x03K\x04\x86", b"K\x04K\x01\x86"  # the pickled (3, 4) and (4, 1)
    assert raw.count(size) == 1 and raw.count(stride) == 1
    raw = raw.replace(size, b"K\x04K\x03\x86").replace(stride, b"K\x01K\x04\x86")
    path.write_bytes(raw)
    np.testing.assert_array_equal(read_torch_state_dict(path)["t"], base.T)


def _legacy_file(path, main_pickle: bytes) -> None:
    """The three header pickles of a legacy file, then ``main_pickle`` as the state dict."""
    with open(path, "wb") as fh:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(header, fh, protocol=2)
        fh.write(main_pickle)
        pickle.dump([], fh, protocol=2)


class _Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


@pytest.mark.parametrize("how", ["GLOBAL os.system", "GLOBAL builtins.eval",
                                 "STACK_GLOBAL os.system (protocol 4)"])
def test_a_pickle_naming_another_global_is_refused_and_nothing_runs(tmp_path, how):
    marker = tmp_path / "pwned"
    if how == "GLOBAL os.system":
        payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
        named = "os.system"
    elif how == "GLOBAL builtins.eval":
        expr = f"__import__('pathlib').Path({str(marker)!r}).touch()"
        payload = b"cbuiltins\neval\n(X" + struct.pack("<I", len(expr)) + expr.encode() + b"tR."
        named = "builtins.eval"
    else:
        payload = pickle.dumps({"w": _Evil(os.system, f"touch {marker}")}, protocol=4)
        named = f"{os.system.__module__}.system"  # posix.system on Linux
    path = tmp_path / "evil.pth"
    _legacy_file(path, payload)
    with pytest.raises(TorchFileError) as err:
        read_torch_state_dict(path)
    msg = str(err.value)
    assert named in msg and "refused" in msg and str(path) in msg
    assert not marker.exists()
    # the same payload really does run when unpickled without restriction: the test is real
    if how == "GLOBAL os.system":
        pickle.loads(payload)
        assert marker.exists()


def test_a_malicious_first_pickle_is_refused_too(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    with pytest.raises(TorchFileError, match="os.system"):
        read_torch_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.999])
def test_a_truncated_file_names_the_file(tmp_path, keep):
    path = tmp_path / "w.pth"
    write_legacy_state_dict(path, _state())
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(TorchFileError) as err:
        read_torch_state_dict(path)
    assert str(path) in str(err.value) and "truncated" in str(err.value)


def test_an_altered_file_fails_its_checksum_before_being_read(tmp_path):
    path = tmp_path / "w.pth"
    write_legacy_state_dict(path, _state())
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert read_torch_state_dict(path, sha256=good)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # one byte of the last tensor's data: still a readable file
    path.write_bytes(bytes(raw))
    read_torch_state_dict(path)  # without the checksum nothing can tell
    with pytest.raises(TorchFileError) as err:
        read_torch_state_dict(path, sha256=good)
    assert "SHA-256" in str(err.value) and str(path) in str(err.value)


def test_a_zip_checkpoint_is_refused_with_a_clear_message(tmp_path):
    import zipfile

    path = tmp_path / "new.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"")
    with pytest.raises(TorchFileError, match="zip"):
        read_torch_state_dict(path)


def test_storage_sizes_must_match_what_the_pickle_declared(tmp_path):
    path = tmp_path / "w.pth"
    write_legacy_state_dict(path, {"a": np.zeros(3, "float32")})
    raw = path.read_bytes()
    count = struct.pack("<q", 3)
    i = raw.rindex(count)
    path.write_bytes(raw[:i] + struct.pack("<q", 2) + raw[i + 8:])
    with pytest.raises(TorchFileError, match="2 elements, 3 declared"):
        read_torch_state_dict(path)


def test_allowed_globals_are_exactly_a_state_dicts():
    names = {f"{m}.{n}" for m, n in torch_weights._ALLOWED}  # noqa: SLF001
    assert "collections.OrderedDict" in names and "torch._utils._rebuild_tensor_v2" in names
    assert all(n.startswith("torch.") and n.endswith("Storage") for n in
               names - {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2"})


@pytest.mark.parametrize("target", [b"ctorch\nFloatStorage\n",
                                    b"ctorch._utils\n_rebuild_tensor_v2\n",
                                    b"ccollections\nOrderedDict\n"])
@pytest.mark.parametrize("state", [b"}S'name'\nS'ByteStorage'\ns",  # a __dict__ update
                                   b"N}S'name'\nS'ByteStorage'\ns\x86"])  # a slot state
def test_a_pickle_cannot_alter_the_objects_it_is_allowed_to_name(tmp_path, target, state):
    """BUILD on an allowed global must fail, not change it for this or later reads."""
    path = tmp_path / "build.pth"
    _legacy_file(path, b"\x80\x02" + target + state + b"b.")
    with pytest.raises(TorchFileError):
        read_torch_state_dict(path)
    assert {k[1]: v.name for k, v in torch_weights._ALLOWED.items()  # noqa: SLF001
            if k[1].endswith("Storage")} == {n: n for n in torch_weights.STORAGE_DTYPES}
    test_reads_back_what_was_written_dtypes_shapes_and_values(tmp_path)

"""Explaining a whole dataset: equal maps, resuming, manifests, atomic shards, two replicas."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import FAST, conv_gap_model, images

from course_utils import attribution, shards
from course_utils.attribution import explain_dataset

ROOT = Path(__file__).resolve().parents[1]
N = 7  # images: shards of 3, 3 and 1 with shard_size=3


@pytest.fixture(scope="module")
def model():
    return conv_gap_model()


@pytest.fixture(scope="module")
def x():
    return images(N)


def dataset(x, labels=None):
    return tf.data.Dataset.from_tensor_slices(x if labels is None else (x, labels))


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "gradcam", "occlusion", "lime"])
def test_maps_equal_a_direct_call(model, x, tmp_path, method):
    opts = FAST.get(method, {})
    run = explain_dataset(model, dataset(x), method, out=tmp_path / method, shard_size=3,
                          progress=False, **opts)
    direct = attribution.METHODS[method](model, x, **opts)
    assert run.computed == [0, 1, 2] and run.n_shards == 3
    np.testing.assert_allclose(run.load("maps"), direct, rtol=1e-5, atol=1e-6)
    predicted = np.argmax(model.predict(x, verbose=0), axis=-1)
    np.testing.assert_array_equal(run.load("targets"), predicted)
    np.testing.assert_array_equal(run.load("positions"), np.arange(N))


def test_batched_dataset_labels_as_targets(model, x, tmp_path):
    labels = np.array([2, 0, 1, 2, 1, 0, 0])
    ds = dataset(x, labels).batch(4)  # batches of 4 are re-cut into shards of 3
    run = explain_dataset(model, ds, "saliency", out=tmp_path / "o", targets="label",
                          shard_size=3, progress=False)
    np.testing.assert_allclose(run.load("maps"), attribution.saliency(model, x, labels),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(run.load("targets"), labels)
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["n_shards"] == 3


def test_shards_are_plain_npz_without_pickles(model, x, tmp_path):
    run = explain_dataset(model, dataset(x), "saliency", out=tmp_path / "o", shard_size=3,
                          progress=False)
    files = sorted(p.name for p in run.out.iterdir())
    assert files == ["manifest.json", "shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]
    for i in range(3):
        with np.load(run.out / shards.shard_name(i), allow_pickle=False) as data:
            assert sorted(data.files) == ["images_sha256", "maps", "positions", "targets"]
            assert all(data[k].dtype != object for k in data.files)
            assert data["maps"].dtype == np.float32


def test_interrupted_run_resumes_computing_only_missing_shards(model, x, tmp_path, monkeypatch):
    reference = explain_dataset(model, dataset(x), "saliency", out=tmp_path / "ref",
                                shard_size=2, progress=False).load("maps")
    calls = []
    real = attribution.METHODS["saliency"]

    def failing(model, imgs, *args, **kwargs):
        calls.append(len(imgs))
        if len(calls) == 3:
            raise RuntimeError("interrupted while computing shard 2")
        return real(model, imgs, *args, **kwargs)

    monkeypatch.setitem(attribution.METHODS, "saliency", failing)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="interrupted"):
        explain_dataset(model, dataset(x), "saliency", out=out, shard_size=2, progress=False)
    assert sorted(p.name for p in out.glob("shard-*")) == ["shard-00000.npz", "shard-00001.npz"]
    assert not json.loads((out / "manifest.json").read_text()).get("complete")
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    calls.clear()
    run = explain_dataset(model, dataset(x), "saliency", out=out, shard_size=2, progress=False)
    assert run.computed == [2, 3]
    assert calls == [2, 1]  # the method ran on shards 2 and 3 only (2 and 1 images)
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before
    np.testing.assert_array_equal(run.load("maps"), reference)
    assert temporaries(out) == []
    again = explain_dataset(model, dataset(x), "saliency", out=out, shard_size=2, progress=False)
    assert again.computed == [] and calls == [2, 1]


def test_a_failed_write_leaves_no_shard_and_no_temporary(model, x, tmp_path, monkeypatch):
    real = np.savez

    def half_then_fail(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", half_then_fail)
    out = tmp_path / "o"
    with pytest.raises(OSError, match="disk full"):
        explain_dataset(model, dataset(x), "saliency", out=out, shard_size=3, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    monkeypatch.setattr(np, "savez", real)
    run = explain_dataset(model, dataset(x), "saliency", out=out, shard_size=3, progress=False)
    assert run.computed == [0, 1, 2]


_KILLED = """
import sys, numpy as np, keras, tensorflow as tf
import course_utils
from course_utils.attribution import explain_dataset
model = keras.models.load_model(sys.argv[1])
x = np.load(sys.argv[2])
explain_dataset(model, tf.data.Dataset.from_tensor_slices(x), "smoothgrad", out=sys.argv[3],
                shard_size=1, n_samples=3, progress=False)
"""


def test_killed_process_leaves_whole_shards_and_resumes(model, tmp_path):
    x = images(40, seed=3)
    np.save(tmp_path / "x.npy", x)
    model.save(tmp_path / "model.keras")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED, str(tmp_path / "model.keras"), str(tmp_path / "x.npy"),
         str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("shard-*.npz"))) < 3 and time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it was killed: {proc.stderr.read().decode()}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    written = sorted(out.glob("shard-*.npz"))
    assert 3 <= len(written) < 40, "kill the run mid-way"
    for path in written:  # every shard file is whole: it loads, with one map per image
        with np.load(path, allow_pickle=False) as data:
            assert data["maps"].shape == (1, 16, 16)
    before = {p.name: p.stat().st_mtime_ns for p in written}
    run = explain_dataset(model, dataset(x), "smoothgrad", out=out, shard_size=1, n_samples=3,
                          progress=False)
    assert sorted(set(range(40)) - set(run.computed)) == [int(n[6:11]) for n in sorted(before)]
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before
    assert temporaries(out) == []  # a temporary file the kill left behind is removed
    np.testing.assert_allclose(run.load("maps"), attribution.smoothgrad(model, x, n_samples=3),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("change, what", [
    ({"method": "gradcam"}, "settings.method: 'saliency' in the folder's manifest, now 'gradcam'"),
    ({"reduce": "sum"}, "settings.options.reduce: not in the folder's manifest, now 'sum'"),
    ({"shard_size": 2}, "settings.shard_size: 3"),
    ({"targets": 1}, "settings.targets: None"),
])
def test_other_settings_in_the_same_folder_are_refused(model, x, tmp_path, change, what):
    explain_dataset(model, dataset(x), "saliency", out=tmp_path / "o", shard_size=3,
                    progress=False)
    kwargs = {"method": "saliency", "shard_size": 3, **change}
    with pytest.raises(shards.ManifestMismatch) as err:
        explain_dataset(model, dataset(x), out=tmp_path / "o", progress=False, **kwargs)
    assert what in str(err.value)
    assert "Delete the folder" in str(err.value) and "another out" in str(err.value)


def test_another_model_is_refused(model, x, tmp_path):
    explain_dataset(model, dataset(x), "saliency", out=tmp_path / "o", shard_size=3,
                    progress=False)
    other = conv_gap_model(seed=1)  # same architecture and name, other weights
    with pytest.raises(shards.ManifestMismatch, match="weights_sha256"):
        explain_dataset(other, dataset(x), "saliency", out=tmp_path / "o", shard_size=3,
                        progress=False)


def test_a_reordered_dataset_is_refused_on_resume(model, x, tmp_path):
    explain_dataset(model, dataset(x), "saliency", out=tmp_path / "o", shard_size=3,
                    progress=False)
    with pytest.raises(ValueError, match="shuffled"):
        explain_dataset(model, dataset(x[::-1].copy()), "saliency", out=tmp_path / "o",
                        shard_size=3, progress=False)


def test_bad_input_is_explained(model, x, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        explain_dataset(model, dataset(x), "saliency", out=tmp_path / "file", progress=False)
    with pytest.raises(ValueError, match="'saliency', 'smoothgrad'"):
        explain_dataset(model, dataset(x), "salency", out=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match=r"shape \(8, 8, 3\) but model"):
        explain_dataset(model, dataset(images(2, size=8)), "saliency", out=tmp_path / "b",
                        progress=False)
    with pytest.raises(TypeError, match="from_tensor_slices"):
        explain_dataset(model, x, "saliency", out=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="'label'"):
        explain_dataset(model, dataset(x), "saliency", out=tmp_path / "d", targets="label",
                        progress=False)
    with pytest.raises(ValueError, match="targets must be"):
        explain_dataset(model, dataset(x), "saliency", out=tmp_path / "e", targets=[1, 2],
                        progress=False)


_TWO_DEVICES = """
import json, logging, sys, numpy as np
import course_utils
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from course_utils.attribution import explain_dataset
from course_utils.engine import replicas
x = np.load(sys.argv[2])
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = keras.models.load_model(sys.argv[1])
result = {"replicas": strategy.num_replicas_in_sync, "diff": {}, "calls": {}}
records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger("course_utils.attribution.at_scale").addHandler(handler)
for method, opts in [("saliency", {}), ("smoothgrad", {"n_samples": 3}), ("gradcam", {}),
                     ("occlusion", {"window": 4, "stride": 4})]:
    ds = tf.data.Dataset.from_tensor_slices(x)
    calls = [replicas.stats["distributed_calls"]]
    one = explain_dataset(model, ds, method, out=f"{sys.argv[3]}/{method}-1", shard_size=4,
                          batch_size=4, progress=False, **opts).load("maps")
    calls.append(replicas.stats["distributed_calls"])
    two = explain_dataset(model, ds, method, out=f"{sys.argv[3]}/{method}-2", shard_size=4,
                          batch_size=4, strategy=strategy, progress=False, **opts).load("maps")
    calls.append(replicas.stats["distributed_calls"])
    result["diff"][method] = [float(np.abs(one - two).max()), float(np.abs(one).max())]
    result["calls"][method] = [calls[1] - calls[0], calls[2] - calls[1]]

# A model trained under the strategy: Keras leaves each replica its own batch-norm statistics
with strategy.scope():
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
model.fit(x, np.arange(len(x)) % 3, epochs=3, batch_size=4, verbose=0)
def copies_differ():
    local = [(v.path, [np.asarray(c) for c in strategy.experimental_local_results(v.value)])
             for v in model.variables]
    return [p for p, cs in local if any(not np.array_equal(cs[0], c) for c in cs[1:])]
result["differ_before"] = copies_differ()
ds = tf.data.Dataset.from_tensor_slices(x)
one = explain_dataset(model, ds, "saliency", out=f"{sys.argv[3]}/trained-1", shard_size=4,
                      batch_size=4, progress=False).load("maps")
two = explain_dataset(model, ds, "saliency", out=f"{sys.argv[3]}/trained-2", shard_size=4,
                      batch_size=4, strategy=strategy, progress=False).load("maps")
result["differ_after"] = copies_differ()
result["log"] = [r.getMessage() for r in records]
result["trained_diff"] = [float(np.abs(one - two).max()), float(np.abs(one).max())]
print(json.dumps(result))
"""


def test_two_replicas_give_the_maps_of_one_device(model, tmp_path):
    """MirroredStrategy over two logical CPU devices (configured before TensorFlow starts its
    devices, so in a subprocess) against the default device, in the same process."""
    x = images(10, seed=4)
    np.save(tmp_path / "x.npy", x)
    model.save(tmp_path / "model.keras")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_TWO_DEVICES), str(tmp_path / "model.keras"),
         str(tmp_path / "x.npy"), str(tmp_path)], env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    for method, (one, two) in result["calls"].items():
        # chunks cut between the replicas: none without the strategy, one or more per shard
        # (3 shards of 4, 4 and 2 images) with it
        assert one == 0 and two >= 3, (method, one, two)
    for method, (diff, scale) in result["diff"].items():
        # Measured: max |difference| 3.5e-10 (saliency, SmoothGrad, Grad-CAM; maps up to 1e-3 to
        # 2e-3) and 2.2e-8 (occlusion, differences of two scores; maps up to 4e-3): float32
        # round-off, as each replica runs chunks of 2 rows instead of 4 (measured when chunks
        # under 4 rows also ran unfolded; since FOLD_MIN_ROWS = 2 both fold). A wrong or
        # shifted row would differ by ~scale.
        assert diff <= 1e-4 * scale, (method, diff, scale)
    # trained under the strategy: the replicas' batch-norm statistics differed, were aligned
    assert sorted(result["differ_before"]) == ["bn2/moving_mean", "bn2/moving_variance"]
    assert result["differ_after"] == []
    aligned = [m for m in result["log"] if "differed" in m]
    assert len(aligned) == 1 and "bn2/moving_mean" in aligned[0]
    # occlusion's window masks are host-side work: said once, for the run under the strategy
    host = [m for m in result["log"] if "under MirroredStrategy" in m]
    assert len(host) == 1 and host[0].startswith("occlusion under MirroredStrategy: its window")
    diff, scale = result["trained_diff"]
    assert diff <= 1e-4 * scale, (diff, scale)


_WORKER = """
import json, os, sys
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"localhost:{p}" for p in sys.argv[4].split(",")]},
    "task": {"type": "worker", "index": int(sys.argv[5])}})
import numpy as np
import course_utils
import tensorflow as tf
import keras
from course_utils.attribution import explain_dataset
strategy = tf.distribute.MultiWorkerMirroredStrategy()
with strategy.scope():
    model = keras.models.load_model(sys.argv[1])
x = np.load(sys.argv[2])
run = explain_dataset(model, tf.data.Dataset.from_tensor_slices(x), "saliency",
                      out=sys.argv[3], shard_size=4, batch_size=4, strategy=strategy,
                      progress=False)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "computed": run.computed,
                  "writer": run.folder.writer}))
"""


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_write_the_maps_of_one_process(model, tmp_path):
    """MultiWorkerMirroredStrategy with two worker processes on this machine (TF_CONFIG on
    localhost): worker 0 writes, worker 1 computes its share and writes nothing."""
    x = images(10, seed=6)
    np.save(tmp_path / "x.npy", x)
    model.save(tmp_path / "model.keras")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    ports = ",".join(map(str, _free_ports(2)))
    procs = [subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(tmp_path / "model.keras"), str(tmp_path / "x.npy"),
         str(tmp_path / "run"), ports, str(i)], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        results = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    outs = []
    for proc, (stdout, stderr) in zip(procs, results, strict=True):
        assert proc.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert [o["replicas"] for o in outs] == [2, 2]
    assert [o["writer"] for o in outs] == [True, False]
    assert outs[0]["computed"] == outs[1]["computed"] == [0, 1, 2]
    run = shards.Sharded.open(tmp_path / "run")
    np.testing.assert_allclose(run.load("maps"), attribution.saliency(model, x),
                               rtol=1e-4, atol=1e-7)

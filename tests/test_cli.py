import subprocess
import sys

import pytest

from course_utils import __main__ as cli


def test_check_reports_versions_devices_and_caches():
    report = cli.check()
    assert report["keras"].startswith("3.")
    assert set(report["imagenet_weights_cached"]) >= {"vgg16", "xception", "inception_v3",
                                                      "mobilenet_v2"}
    assert isinstance(report["gpus"], list)
    assert report["efficientnet_lite0_package"][0].isdigit()  # a version: installed
    assert isinstance(report["efficientnet_lite0_converted"], bool)
    assert report["offline_mode"] in ("on", "auto", "off")
    assert report["COURSE_OFFLINE"] is (report["offline_mode"] == "on")


def test_fetch_rejects_unknown_names_and_lists_the_valid_ones():
    with pytest.raises(SystemExit) as err:
        cli.fetch(["imagenet21k"])
    assert "vgg16" in str(err.value) and "food101" in str(err.value)


def test_fetch_offline_fails_cleanly_without_leaving_files(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    from course_utils.data import DownloadError

    with pytest.raises(DownloadError, match="COURSE_OFFLINE"):
        cli.fetch(["food101"])
    assert list(tmp_path.iterdir()) == []


def test_fetch_efficientnet_lite0_converts_its_weights_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_OFFLINE", "1")  # nothing to download: the weights are a package
    assert cli.check()["efficientnet_lite0_converted"] is False
    cli.fetch(["efficientnet_lite0"])
    assert (tmp_path / "cache" / "models" / "efficientnet_lite0.weights.npz").is_file()
    assert cli.check()["efficientnet_lite0_converted"] is True


def test_module_entry_point_prints_the_report():
    out = subprocess.run([sys.executable, "-m", "course_utils", "check"], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    assert "tensorflow" in out and "imagenet_weights_cached" in out


_KERNELS = """
import sys
from course_utils import config
import keras, numpy as np
from course_utils.attribution import saliency
keras.utils.set_random_seed(0)
inp = keras.Input((32, 32, 3))
z = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
z = keras.layers.DepthwiseConv2D(3, activation="relu")(z)
z = keras.layers.GlobalAveragePooling2D()(z)
model = keras.Model(inp, keras.layers.Dense(3)(z))
x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
np.save(sys.argv[1], saliency(model, x, [0, 2], reduce="sum"))
print(config.onednn_enabled())
from course_utils.engine import batching
print(batching.auto_batch_size((224, 224, 3)))
"""


def test_onednn_kernels_on_by_default_give_the_same_gradients(tmp_path):
    """Importing course_utils before TensorFlow turns TensorFlow's oneDNN CPU kernels on unless
    TF_ENABLE_ONEDNN_OPTS says otherwise (=0: off), as check() reports; the gradients agree to
    float32 round-off, and the automatic chunk follows the kernels
    (course_utils.engine.batching)."""
    import os

    import numpy as np

    runs = {}
    for setting in (None, "0"):
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        if setting is not None:
            env["TF_ENABLE_ONEDNN_OPTS"] = setting
        out = tmp_path / f"{setting}.npy"
        proc = subprocess.run([sys.executable, "-c", _KERNELS, str(out)], env=env,
                              capture_output=True, text=True, timeout=300, check=True)
        runs[setting] = (proc.stdout.strip().splitlines()[-2:], np.load(out))
    assert runs[None][0] == ["True", "8"] and runs["0"][0] == ["False", "4"]
    np.testing.assert_allclose(runs[None][1], runs["0"][1], rtol=1e-4, atol=1e-6)
    assert np.abs(runs[None][1]).max() > 1e-3  # a real gradient, not zeros

"""The lessons' internet-only path, run offline.

Lesson 10 fine-tunes ``keras.applications`` networks on Food-101 and cats vs dogs through a
``tf.data`` pipeline that preprocesses the images for the network inside a ``map``, with the
networks built without their top (``include_top=False``), which reads Keras' ``_notop`` weight
files: what ``fetch`` downloads and what the readiness check looks for.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_utils import __main__ as cli
from course_utils import config, models

NOTOP = {"inception_v3": "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
         "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5"}


@pytest.fixture
def keras_cache(tmp_path, monkeypatch):
    """An empty Keras cache (``models/`` folder) in place of the machine's, offline; Keras'
    downloader fails the test if it is reached."""
    monkeypatch.setattr(config, "keras_home", lambda: tmp_path)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    (tmp_path / "models").mkdir()

    def no_download(fname, origin=None, **kwargs):
        raise AssertionError(f"Keras' downloader was reached for {fname} ({origin})")

    monkeypatch.setattr(keras.src.utils.file_utils, "get_file", no_download)
    return tmp_path / "models"



# --------------------------------------------------------------------------------------------
# Suspect (a): preprocessing inside a tf.data map
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", models.NAMES)
def test_preprocess_inside_a_tf_data_map_equals_the_numpy_preprocessing(name):
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    ds = tf.data.Dataset.from_tensors(pixels).map(lambda x: models.preprocess(name, x))
    mapped = next(iter(ds)).numpy()
    expected = models.preprocess(name, pixels)
    assert mapped.dtype == np.float32 and mapped.shape == pixels.shape
    np.testing.assert_allclose(mapped, expected, rtol=1e-6, atol=1e-4)
    assert not np.allclose(mapped, pixels)  # it did map into the network's input space


# --------------------------------------------------------------------------------------------
# Suspect (b): the keras.applications bases read Keras' _notop files
# --------------------------------------------------------------------------------------------

def test_readiness_check_looks_for_the_notop_files(keras_cache):
    for name in NOTOP:
        (keras_cache / models.SPECS[name].weights_file).write_bytes(b"with top")
    assert all(models.weights_cached(n) for n in NOTOP)
    assert not any(models.weights_cached(n, include_top=False) for n in NOTOP)
    report = cli.check()
    assert report["imagenet_weights_cached"]["inception_v3"] is True
    assert report["imagenet_notop_weights_cached"]["inception_v3"] is False
    (keras_cache / NOTOP["inception_v3"]).write_bytes(b"no top")
    assert cli.check()["imagenet_notop_weights_cached"] == {
        n: n == "inception_v3" for n in models.SPECS}


def test_fetch_downloads_the_notop_files_the_lessons_use(keras_cache, monkeypatch):
    asked = []

    def fake_get_file(fname, origin=None, cache_subdir="datasets", **kwargs):
        # Keras' builder names the file and URL; write a placeholder where Keras would
        asked.append((fname, origin))
        path = keras_cache / fname
        path.write_bytes(b"weights")
        return str(path)

    monkeypatch.setattr(keras.src.utils.file_utils, "get_file", fake_get_file)
    monkeypatch.setattr(keras.Model, "load_weights", lambda self, path, *a, **k: None)
    monkeypatch.delenv("COURSE_OFFLINE")
    cli.fetch(["inception_v3", "mobilenet_v2"])
    names = [fname for fname, _ in asked]
    assert names == [models.SPECS["inception_v3"].weights_file, NOTOP["inception_v3"],
                     models.SPECS["mobilenet_v2"].weights_file, NOTOP["mobilenet_v2"]]
    assert all(origin.endswith(fname) for fname, origin in asked)  # Keras' own URLs
    report = cli.check()
    assert report["imagenet_notop_weights_cached"]["inception_v3"] is True
    assert report["imagenet_notop_weights_cached"]["mobilenet_v2"] is True

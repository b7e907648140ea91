"""The lessons' internet-only path, run offline on fabricated data with the real layout.

A user with internet fine-tunes InceptionV3 on Food-101's apple pie, pizza and omelette and
MobileNetV2 on cats vs dogs (lesson 10, section 6). Here the same code runs end to end on a
miniature Food-101 and PetImages made of installed photos (``tests/_photos.py``), with
EfficientNet-Lite0's real ImageNet base, whose weights come with a package; the
``keras.applications`` branches are checked for what they read (Keras' ``_notop`` files), what
``fetch`` downloads and what the readiness check looks for.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from _photos import CORRUPT_CAT

from course_utils import __main__ as cli
from course_utils import attribution, config, data, models
from course_utils.models import transfer
from course_utils.models.registry import info

SIZE = 96  # small enough for a CPU test; EfficientNet-Lite0's base gives a 3 x 3 feature map
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
# The fabricated datasets through the course's loaders and pipeline
# --------------------------------------------------------------------------------------------

def test_fabricated_food101_loads_with_the_datasets_split_and_labels(food101_tree):
    train = data.food101(root=food101_tree, split="train")
    test = data.food101(root=food101_tree, split="test")
    assert train.class_names == ("apple_pie", "pizza", "omelette")
    assert np.bincount(train.labels).tolist() == [6, 6, 6]
    assert np.bincount(test.labels).tolist() == [2, 2, 2]
    assert not set(train.files) & set(test.files) and not train.skipped
    for f, y in zip(train.files, train.labels):
        assert f.parent.name == train.class_names[y]
    batches = list(train.dataset(SIZE, batch_size=8).map(
        lambda x, y: (models.preprocess("efficientnet_lite0", x), y)))
    x = np.concatenate([b[0].numpy() for b in batches])
    assert x.shape == (18, SIZE, SIZE, 3) and -1.0 <= x.min() < x.max() <= 1.0
    # the photos differ between classes: apple pie (coffee) and pizza (rocket) are not alike
    y = np.concatenate([b[1].numpy() for b in batches])
    assert np.abs(x[y == 0].mean(0) - x[y == 1].mean(0)).mean() > 0.05


def test_fabricated_pet_images_skip_the_truncated_jpeg(pet_images_tree):
    train = data.cats_vs_dogs(root=pet_images_tree, split="train")
    test = data.cats_vs_dogs(root=pet_images_tree, split="test")
    assert [f.name for f in train.skipped] == [CORRUPT_CAT] and not test.skipped
    assert len(train) + len(test) == 20 and CORRUPT_CAT not in {f.name for f in train.files}
    assert set(train.labels.tolist()) == {0, 1}
    # every file left decodes to the end in the tf.data pipeline
    n = sum(int(y.shape[0]) for _, y in train.dataset(SIZE, batch_size=4))
    assert n == len(train)


# --------------------------------------------------------------------------------------------
# finetune: offline with EfficientNet-Lite0's real base, then explained
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def food_model(food101_tree):
    images = data.food101(root=food101_tree, split="train")
    return transfer.finetune(images, base="efficientnet_lite0", size=SIZE, epochs=1,
                             batch_size=6), images


def test_finetune_builds_the_lite0_base_with_its_real_weights_and_trains_the_head(food_model):
    net, images = food_model
    base = net.layers[0]
    assert isinstance(base, keras.Model) and base.name == "efficientnet_lite0_base"
    assert base.output.shape == (None, 3, 3, 1280) and not base.trainable
    lite0 = models.load("efficientnet_lite0")
    for layer in ("stem_conv", "top_conv"):  # the package's ImageNet weights, not random ones
        np.testing.assert_array_equal(base.get_layer(layer).get_weights()[0],
                                      lite0.get_layer(layer).get_weights()[0])
    assert "avg_pool" not in {lyr.name for lyr in base.layers}
    assert len(net.history.history["loss"]) == 1 and np.isfinite(net.history.history["loss"])
    meta = info(net)
    assert meta.class_names == ["apple_pie", "pizza", "omelette"] and meta.pixel_max == 255
    pixels = images.load(0, SIZE)[None]
    np.testing.assert_allclose(meta.preprocess(pixels), (pixels - 127.0) / 128.0)


def test_finetuned_food_model_predicts_three_classes_and_is_explained(food_model, food101_tree):
    net, _ = food_model
    test = data.food101(root=food101_tree, split="test")
    x = info(net).preprocess(np.stack([test.load(i, SIZE) for i in range(len(test))]))
    probs = net.predict(x, verbose=0)
    assert probs.shape == (6, 3) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    cam = attribution.gradcam(net, x[:2])  # default layer: found inside the nested base
    sal = attribution.saliency(net, x[:2])
    for maps in (cam, sal):
        assert maps.shape == (2, SIZE, SIZE) and np.all(np.isfinite(maps))
        assert all(m.max() > m.min() for m in maps)  # not constant
    # two different photos get different explanations
    assert not np.allclose(cam[0] / cam[0].max(), cam[1] / cam[1].max())


def test_finetune_under_a_strategy_builds_the_model_in_its_scope(pet_images_tree):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    images = data.cats_vs_dogs(root=pet_images_tree, split="train")
    net = transfer.finetune(images, base="efficientnet_lite0", size=SIZE, epochs=1,
                            batch_size=8, strategy=strategy, steps_per_epoch=1)
    variables = [v.value for v in net.weights]
    assert variables and all(strategy.extended.variable_created_in_scope(v) for v in variables)
    assert not tf.distribute.get_strategy().extended.variable_created_in_scope(variables[0])
    assert info(net).class_names == ["cat", "dog"]
    x = info(net).preprocess(np.stack([images.load(i, SIZE) for i in range(4)]))
    probs = net.predict(x, verbose=0)
    assert probs.shape == (4, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.all(np.isfinite(attribution.gradcam(net, x[:1])))


def test_finetune_with_a_fallback_labels_the_base_it_used(keras_cache, food101_tree):
    images = data.food101(root=food101_tree, split="train")
    with pytest.warns(UserWarning, match="INSTEAD OF InceptionV3"):
        net = transfer.finetune(images, base="inception_v3", size=SIZE, epochs=1,
                                batch_size=6, steps_per_epoch=1, fallback="efficientnet_lite0")
    assert net.layers[0].name == "efficientnet_lite0_base"
    assert info(net).stands_for == "inception_v3" and "InceptionV3" in info(net).label
    assert info(net).class_names == ["apple_pie", "pizza", "omelette"]


# --------------------------------------------------------------------------------------------
# Suspect (b): the keras.applications bases read Keras' _notop files
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("base, size", [("inception_v3", 299), ("mobilenet_v2", 160)])
def test_finetune_offline_without_the_notop_file_names_it_and_the_fetch_command(
        keras_cache, monkeypatch, tmp_path, base, size):
    (keras_cache / models.SPECS[base].weights_file).write_bytes(b"with-top weights")  # not enough
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "no-data"))
    with pytest.raises(models.WeightsUnavailableError) as err:
        transfer.finetune("food101", base=base, size=size)  # weights checked before data
    message = str(err.value)
    assert NOTOP[base] in message and f"python -m course_utils fetch {base}" in message
    assert "COURSE_OFFLINE" in message and "fallback='efficientnet_lite0'" in message


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

"""Hostile inputs (issue #12): each probe that once passed silently, leaked internals or failed
with a message that did not say what to do."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import data

# --------------------------------------------------------------------------------------------
# Photo folders (findings 5 and 10)
# --------------------------------------------------------------------------------------------


def _camera_jpeg(path, colour, size=(40, 30)):
    """A JPEG as a camera writes it: an Exif APP1 segment right after SOI, no JFIF APP0."""
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", exif=exif.tobytes())
    raw = buf.getvalue()
    assert raw[2:4] == b"\xff\xe0"  # Pillow writes a JFIF APP0 first: drop it
    raw = raw[:2] + raw[4 + int.from_bytes(raw[4:6], "big"):]
    assert raw[:4] == b"\xff\xd8\xff\xe1" and b"JFIF" not in raw
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)


def test_camera_jpegs_without_jfif_are_photos_not_corrupt_files(tmp_path):
    root = tmp_path / "PetImages"
    for i in range(10):
        _camera_jpeg(root / "Cat" / f"{i}.jpg", (100, 100, 100))
        _camera_jpeg(root / "Dog" / f"{i}.jpg", (10, 200, 10))
    train = data.cats_vs_dogs(root=root, split="train")
    test = data.cats_vs_dogs(root=root, split="test")
    assert train.skipped == [] and test.skipped == []
    assert len(train) + len(test) == 20
    images, labels = next(iter(train.dataset(image_size=8, batch_size=64)))
    assert images.shape[0] == len(train) and set(labels.numpy()) <= {0, 1}


def _food(root, lines, files=()):
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "train.txt").write_text("".join(f"{ln}\n" for ln in lines))
    (root / "meta" / "test.txt").write_text("")
    for cls in ("apple_pie", "pizza", "omelette"):
        (root / "images" / cls).mkdir(parents=True)
    for name in files:
        _camera_jpeg(root / "images" / f"{name}.jpg", (200, 100, 50))


@pytest.mark.parametrize("loader, fetch", [(data.food101, "fetch food101"),
                                           (data.cats_vs_dogs, "fetch cats_vs_dogs")])
def test_no_folder_and_no_tensorflow_datasets_says_how_to_fetch(loader, fetch, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # not installed
    with pytest.raises(FileNotFoundError, match=fetch) as err:
        loader()
    assert str(tmp_path) in str(err.value)


def test_food101_file_listed_in_meta_but_missing_is_named_when_loading(tmp_path):
    root = tmp_path / "food-101"
    _food(root, ["pizza/1", "pizza/2"], files=["pizza/1"])
    with pytest.raises(FileNotFoundError, match=r"pizza/2\.jpg.*meta/train\.txt"):
        data.food101(root=root)


def test_food101_corrupt_jpeg_is_skipped_by_name_before_the_pipeline_runs(tmp_path, capsys):
    root = tmp_path / "food-101"
    _food(root, ["pizza/1", "pizza/2", "omelette/3"], files=["pizza/1", "omelette/3"])
    good = (root / "images" / "pizza" / "1.jpg").read_bytes()
    (root / "images" / "pizza" / "2.jpg").write_bytes(good[: len(good) // 2])  # truncated
    train = data.food101(root=root)
    assert [f.name for f in train.skipped] == ["2.jpg"] and len(train) == 2
    assert "pizza/2.jpg" in capsys.readouterr().out
    images, labels = next(iter(train.dataset(image_size=8)))  # no TensorFlow error midway
    assert images.shape == (2, 8, 8, 3) and sorted(labels.numpy().tolist()) == [1, 2]


def test_food101_empty_meta_file_is_an_error_naming_it(tmp_path):
    root = tmp_path / "food-101"
    _food(root, [])
    with pytest.raises(ValueError, match=r"meta/train\.txt.*no image"):
        data.food101(root=root)


def test_an_empty_image_set_refuses_to_build_a_pipeline():
    with pytest.raises(ValueError, match="no images"):
        data.ImageSet(("a", "b")).dataset(image_size=8)


# --------------------------------------------------------------------------------------------
# Cached trained models (finding 9)
# --------------------------------------------------------------------------------------------


def _tiny_train(width: int = 2):
    """Train-or-load a tiny model in the current COURSE_DATA_DIR; returns it and its paths."""
    import keras

    from course_utils import models
    from course_utils.models import trained

    x = np.random.default_rng(0).uniform(0, 1, (64, 8, 8, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype("int64")

    def build():
        inp = keras.Input((8, 8, 1), name="x")
        h = keras.layers.Conv2D(width, 3, activation="relu", name="conv")(inp)
        h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
        return keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="out")(h))

    model = trained.train_or_load("tiny", build, lambda: ((x, y), (x, y)),
                                  trained.TrainSettings(epochs=1, batch_size=32),
                                  models.ModelInfo())
    meta = Path(model.course_meta_path)
    return model, meta.with_suffix(".keras"), meta


@pytest.fixture
def fit_calls(monkeypatch):
    """Counts ``keras.Model.fit`` calls (a retraining)."""
    import keras

    calls = []
    real = keras.Model.fit

    def counting(self, *args, **kwargs):
        calls.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", counting)
    return calls


def _garbage(model_path, meta_path, tmp_path):
    model_path.write_bytes(b"not a keras file at all")


def _empty(model_path, meta_path, tmp_path):
    model_path.write_bytes(b"")


def _truncated(model_path, meta_path, tmp_path):
    raw = model_path.read_bytes()
    model_path.write_bytes(raw[: len(raw) // 2])


def _corrupt_meta(model_path, meta_path, tmp_path):
    meta_path.write_text('{"name": "tiny", "sha256": ')


def _other_valid_model(model_path, meta_path, tmp_path):
    _, other, _ = _tiny_train(width=3)  # another key, another file: copy it over
    model_path.write_bytes(other.read_bytes())


@pytest.mark.parametrize("damage", [_garbage, _empty, _truncated, _corrupt_meta,
                                    _other_valid_model])
def test_a_damaged_model_cache_is_rebuilt_with_a_warning_naming_the_file(
        damage, tmp_path, monkeypatch, fit_calls):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    first, model_path, meta_path = _tiny_train()
    assert "sha256" in json.loads(meta_path.read_text())
    damage(model_path, meta_path, tmp_path)
    trainings = len(fit_calls)
    with pytest.warns(UserWarning, match="Retraining it") as record:
        again, _, _ = _tiny_train()
    named = str(model_path) if damage is not _corrupt_meta else str(meta_path)
    assert any(named in str(w.message) for w in record)
    assert len(fit_calls) == trainings + 1
    x = np.random.default_rng(1).uniform(0, 1, (4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(again.predict(x, verbose=0), first.predict(x, verbose=0),
                               atol=1e-5)  # the same settings train the same model
    _tiny_train()  # and the rebuilt cache loads without training
    assert len(fit_calls) == trainings + 1
    assert [p.name for p in model_path.parent.iterdir() if p.name.startswith(".")] == []


def test_a_cache_written_before_checksums_is_adopted_not_retrained(tmp_path, monkeypatch,
                                                                   fit_calls):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    first, model_path, meta_path = _tiny_train()
    meta = json.loads(meta_path.read_text())
    digest = meta.pop("sha256")
    meta_path.write_text(json.dumps(meta))  # as sessions before the checksum wrote it
    trainings = len(fit_calls)
    again, _, _ = _tiny_train()
    assert len(fit_calls) == trainings  # minutes of training are not thrown away
    assert json.loads(meta_path.read_text())["sha256"] == digest  # and now it is checked
    x = np.random.default_rng(1).uniform(0, 1, (4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(again.predict(x, verbose=0), first.predict(x, verbose=0))
    model_path.write_bytes(model_path.read_bytes()[:100])  # from now on damage is caught
    with pytest.warns(UserWarning, match="Retraining it"):
        _tiny_train()
    assert len(fit_calls) == trainings + 1


# --------------------------------------------------------------------------------------------
# Feature visualization and DeepDream (findings 6, 7 and 12)
# --------------------------------------------------------------------------------------------


def _conv(hw=(None, None), name="dream_net"):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((*hw, 3)),
                             keras.layers.Conv2D(4, 3, activation="relu", name="c")], name=name)


@pytest.fixture(scope="module")
def conv():
    return _conv()


def _photo(size=16, value=0.5):
    return np.full((size, size, 3), value, "float32")


@pytest.mark.parametrize("option", [{"tv": float("nan")}, {"blur": float("inf")},
                                    {"tv": -1.0}])
def test_visualize_rejects_non_finite_penalties(conv, option):
    from course_utils import features

    with pytest.raises(ValueError, match=f"{next(iter(option))} must be >= 0"):
        features.visualize(conv, "c", [0], steps=2, size=16, progress=False, **option)


@pytest.mark.parametrize("hw", [(None, None), (16, 16)])
def test_nan_photos_are_rejected_by_deepdream_and_activations(hw):
    from course_utils import features

    model = _conv(hw, name=f"nan_{hw[0]}")
    photo = _photo()
    photo[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        features.deepdream(model, photo, "c", steps=2, progress=False)
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        features.activations(model, photo, ["c"])


@pytest.mark.parametrize("option", [{"octave_scale": float("inf")}, {"step_size": float("inf")},
                                    {"step_size": float("nan")}])
def test_deepdream_rejects_non_finite_options(conv, option):
    from course_utils import features

    with pytest.raises(ValueError, match=f"{next(iter(option))} must be >"):
        features.deepdream(conv, _photo(), "c", steps=2, progress=False, **option)


def test_deepdream_of_a_0_255_photo_on_a_0_1_model_says_which_range_it_expects(conv):
    from course_utils import features

    with pytest.raises(ValueError, match=r"\[0, 1\].*0\.\.200.*divide it by 255"):
        features.deepdream(conv, _photo(value=200.0), "c", steps=2, progress=False)


def test_deepdream_of_a_0_1_photo_on_a_0_255_model_says_which_range_it_expects():
    from course_utils import features
    from course_utils.models.registry import ModelInfo, register

    model = register(_conv(name="dream255"), ModelInfo(preprocess=lambda x: x / 255.0,
                                                        pixel_max=255.0))
    with pytest.raises(ValueError, match=r"\[0, 255\].*multiply it by 255"):
        features.deepdream(model, _photo(value=0.8), "c", steps=2, progress=False)


def test_deepdream_refuses_a_photo_smaller_than_its_smallest_octave(conv):
    from course_utils import features

    with pytest.raises(ValueError, match="4x4.*at least 8x8"):
        features.deepdream(conv, _photo(size=4), "c", steps=2, progress=False)
    small = features.deepdream(conv, _photo(size=9), "c", octaves=3, steps=2, progress=False)
    assert small.shape == (9, 9, 3)  # the size it was given, whatever the octaves


def test_deepdream_of_a_file_name_says_to_load_the_photo_first(conv):
    from course_utils import features

    with pytest.raises(TypeError, match="file name 'photo.jpg'.*load_img"):
        features.deepdream(conv, "photo.jpg", "c", steps=2, progress=False)
    with pytest.raises(TypeError, match="file name"):
        features.activations(conv, Path("photo.jpg"), ["c"])


# --------------------------------------------------------------------------------------------
# Explorers (finding 11)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    from conftest import conv_gap_model, images

    return conv_gap_model(size=16, classes=3), images(1, size=16, seed=4)[0]


@pytest.mark.parametrize("explorer, option", [
    ("integrated_gradients_explorer", {"steps": ()}),
    ("integrated_gradients_explorer", {"baselines": []}),
    ("occlusion_explorer", {"windows": ()}), ("occlusion_explorer", {"strides": []}),
    ("occlusion_explorer", {"fills": ()}), ("lime_explorer", {"samples": ()}),
    ("lime_explorer", {"n_segments": ()}), ("lime_explorer", {"kernel_sizes": ()}),
    ("gradcam_explorer", {"layers": []}), ("gradcam_explorer", {"classes": []}),
])
def test_explorers_refuse_empty_option_lists_by_name(small, explorer, option):
    from course_utils import widgets

    name = next(iter(option))
    with pytest.raises(ValueError, match=f"{name}.*at least one"):
        getattr(widgets, explorer)(*small, **option)


def test_gradcam_explorer_refuses_a_class_the_model_does_not_have(small):
    from course_utils import widgets

    with pytest.raises(ValueError, match="Class 7 is outside the model's classes 0..2"):
        widgets.gradcam_explorer(*small, layers=["relu2"], classes=[0, 7])


def test_setting_a_control_to_a_value_it_does_not_offer_names_the_control_and_its_options(
        small):
    from course_utils import widgets

    channels = widgets.channel_explorer(*small, ["conv1", "relu2"])
    with pytest.raises(ValueError, match=r"'nope'.*control 'layer'.*\['conv1', 'relu2'\]"):
        channels.set(layer="nope")
    gradcam = widgets.gradcam_explorer(*small, layers=["relu2"], classes=[0, 2])
    with pytest.raises(ValueError, match=r"control 'target'.*\[0, 2\]"):
        gradcam.set(target=1)
    assert gradcam.set(target=2).values["target"] == 2  # and the explorer still works


def test_gradcam_explorer_offers_both_classes_of_a_sigmoid_model(small):
    from conftest import conv_gap_model

    from course_utils import attribution, widgets

    model = conv_gap_model(size=16, head="sigmoid")
    image = small[1]
    ex = widgets.gradcam_explorer(model, image, layers=["relu2"])
    menu = ex.controls["target"]
    assert sorted(v for _, v in menu.options) == [0, 1]
    assert "negated logit" in dict((v, k) for k, v in menu.options)[1]
    p = float(np.asarray(model(image[None]))[0, 0])
    assert menu.options[0][1] == (0 if p > 0.5 else 1)  # the predicted class first
    for target in (0, 1):
        np.testing.assert_allclose(
            ex.set(target=target).result,
            attribution.gradcam(model, image, target, layer="relu2")[0], rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------
# Messages that leaked internals (finding 12) and commands that did nothing (finding 14)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels, bad", [([0, 1, 5, 0], "5"), ([0, 1, -1, 0], "-1"),
                                         ([0, 0.5, 1, 0], "0.5")])
def test_shuffled_label_model_names_labels_outside_the_classes(labels, bad):
    import keras

    from course_utils.metrics import shuffled_label_model

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(0).uniform(size=(4, 4, 4, 1)).astype("float32")
    with pytest.raises(ValueError, match=f"label {bad} .*class indices 0..1"):
        shuffled_label_model(model, x, np.asarray(labels), epochs=1)


def _cli(*args, cwd):
    import os
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}  # this checkout's course_utils
    return subprocess.run([sys.executable, "-m", "course_utils", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_build_of_a_missing_notebook_is_one_line_not_a_traceback(tmp_path):
    proc = _cli("build", "--out", "out", "missing.ipynb", cwd=tmp_path)
    assert proc.returncode != 0
    assert "missing.ipynb" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["build", "slides"])
def test_build_and_slides_outside_the_repository_fail_saying_where_lessons_are(command,
                                                                              tmp_path):
    proc = _cli(command, "--out", "out", cwd=tmp_path)
    assert proc.returncode != 0
    assert "notebooks" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cached_file_refuses_to_cache_an_empty_build(tmp_path):
    from course_utils import cache

    target = tmp_path / "page.html"
    with pytest.raises(RuntimeError, match="wrote nothing"):
        cache.cached_file(target, lambda tmp: None)
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"")  # an empty file left by an older version is rebuilt
    cache.cached_file(target, lambda tmp: tmp.write_text("<html></html>"))
    assert target.read_text() == "<html></html>"

from pathlib import Path

import keras
import numpy as np
import pytest

from course_utils import models
from course_utils.models import imagenet


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        models.load("alexnet")
    for name in ("vgg16", "xception", "inception_v3", "mobilenet_v2", "efficientnet_lite0"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        models.load("vgg16", fallback="alexnet")  # checked before anything is loaded


def test_class_names_match_keras_spelling_for_known_classes():
    index = imagenet.imagenet_class_index()
    assert len(index) == 1000
    # facts from Keras' imagenet_class_index.json
    assert index[283] == ("n02123394", "Persian_cat")
    assert index[401] == ("n02672831", "accordion")
    assert index[281] == ("n02123045", "tabby")
    assert index[24] == ("n01622779", "great_grey_owl")
    assert len({wnid for wnid, _ in index}) == 1000


def test_decode_returns_the_top_classes_in_order():
    p = np.full((2, 1000), 1e-4)
    p[0, [283, 401, 281]] = [0.6, 0.3, 0.1]
    p[1, 24] = 0.9
    top = models.decode("vgg16", p, top=3)
    assert [name for _, name, _ in top[0]] == ["Persian_cat", "accordion", "tabby"]
    assert top[1][0][1] == "great_grey_owl" and top[1][0][2] == pytest.approx(0.9)


def test_decode_rejects_predictions_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, 1000\)"):
        models.decode("vgg16", np.zeros((1, 10)))


@pytest.mark.parametrize("name", ["vgg16", "xception", "inception_v3", "mobilenet_v2"])
def test_preprocess_matches_keras_own_function(name):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    module = getattr(keras.applications, imagenet.SPECS[name].module)
    np.testing.assert_allclose(models.preprocess(name, x), module.preprocess_input(x.copy()),
                               rtol=1e-6)


def test_preprocess_rejects_non_rgb():
    with pytest.raises(ValueError, match="RGB"):
        models.preprocess("vgg16", np.zeros((8, 8, 1)))


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    from keras.src.backend import config as keras_config

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))  # read once at import
    return tmp_path


def _no_network(monkeypatch):
    from keras.src.utils import file_utils

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(file_utils, "urlretrieve", refuse)


def test_strict_mode_without_weights_says_what_is_missing_and_how_to_fetch(keras_home,
                                                                          monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    _no_network(monkeypatch)
    with pytest.raises(models.WeightsUnavailableError) as err:
        models.load("mobilenet_v2")
    msg = str(err.value)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5" in msg
    assert "python -m course_utils fetch mobilenet_v2" in msg and "could not be downloaded" in msg
    assert "fallback='efficientnet_lite0'" in msg and "standin=True" in msg
    assert not any((keras_home / "models").glob("*.h5"))


@pytest.mark.parametrize("mode", ["1", "auto"])
def test_offline_without_weights_never_hands_back_another_architecture(keras_home, monkeypatch,
                                                                        mode):
    """No stand-in and no other network unless the call asks: code naming VGG16's layers must
    not silently receive something else."""
    monkeypatch.setenv("COURSE_OFFLINE", mode)
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("network is unreachable")

    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "urlretrieve", refuse)
    with pytest.raises(models.WeightsUnavailableError) as err:
        models.load("vgg16")
    msg = str(err.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in msg
    assert "fallback='efficientnet_lite0'" in msg and "standin=True" in msg
    assert (not calls and f"COURSE_OFFLINE={mode}" in msg) if mode == "1" else calls


def test_fallback_returns_lite0_labelled_with_what_it_stands_for(keras_home, monkeypatch,
                                                                  capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.warns(UserWarning, match="INSTEAD OF VGG16"):
        model = models.load("vgg16", fallback="efficientnet_lite0")
    info = models.info(model)
    assert info.name == "efficientnet_lite0" and info.stands_for == "vgg16"
    assert not info.standin and "EfficientNet-Lite0" in info.label and "VGG16" in info.label
    assert "INSTEAD OF VGG16" in capsys.readouterr().out  # said on screen
    names = {la.name for la in model.layers}
    assert "top_conv" in names and "block1_conv1" not in names
    x = models.preprocess("lite0", np.full((1, 224, 224, 3), 127.0))
    assert model.predict(x, verbose=0).shape == (1, 1000)


def test_fallback_after_a_failed_download(keras_home, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    _no_network(monkeypatch)
    with pytest.warns(UserWarning, match="could not be downloaded"):
        model = models.load("xception", fallback="lite0")
    assert models.info(model).stands_for == "xception"


def test_standin_only_when_asked_and_labelled(keras_home, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.warns(UserWarning, match="STAND-IN"):
        model = models.load("mobilenet_v2", standin=True)
    info = models.info(model)
    assert info.standin and "STAND-IN" in info.label and info.pixel_max == 255
    assert model.output.shape[-1] == 1000 and info.class_names[283] == "Persian_cat"
    assert model.get_layer("Conv1") is not None  # MobileNetV2's own architecture
    with pytest.warns(UserWarning, match="STAND-IN"):
        lite = models.load("efficientnet_lite0", standin=True)
    assert models.is_standin(lite) and lite.get_layer("top_conv") is not None


def test_cached_weights_are_loaded_and_not_labelled(keras_home, monkeypatch):
    """Put weights where Keras caches them; load() must use them and call the model real."""
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    keras.utils.set_random_seed(123)
    donor = keras.applications.MobileNetV2(weights=None)
    path = imagenet.weights_path("mobilenet_v2")
    path.parent.mkdir(parents=True)
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as fh:  # the legacy layout keras.applications files have
        legacy_h5_format.save_weights_to_hdf5_group(fh, donor)
    model = models.load("mobilenet_v2", fallback="efficientnet_lite0")  # not needed: unused
    assert not models.is_standin(model) and models.info(model).name == "mobilenet_v2"
    assert models.info(model).label == ""
    x = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), donor.predict(x, verbose=0),
                               atol=1e-6)


def _corrupt_weights(name: str, keep: bytes = b"\x89HDF\r\n\x1a\ngarbage") -> Path:
    path = imagenet.weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(keep)
    return path


def test_corrupt_cached_weights_name_the_file_and_what_to_do(keras_home, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    _no_network(monkeypatch)
    path = _corrupt_weights("mobilenet_v2")
    with pytest.raises(models.WeightsUnavailableError) as err:
        models.load("mobilenet_v2")
    msg = str(err.value)
    assert str(path) in msg and "delete it" in msg
    assert "python -m course_utils fetch mobilenet_v2" in msg


@pytest.mark.parametrize("mode", ["1", "auto"])
def test_corrupt_cached_weights_take_the_fallback_asked_for_naming_the_file(mode, keras_home,
                                                                            monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", mode)
    _no_network(monkeypatch)
    path = _corrupt_weights("mobilenet_v2", keep=b"")
    with pytest.warns(UserWarning, match="INSTEAD OF") as record:
        model = models.load("mobilenet_v2", fallback="efficientnet_lite0")
    assert not models.is_standin(model)
    assert models.info(model).name == "efficientnet_lite0"
    assert models.info(model).stands_for == "mobilenet_v2"
    assert any(str(path) in str(w.message) for w in record)
    with pytest.raises(models.WeightsUnavailableError, match="delete it"):
        models.load("mobilenet_v2")  # no fallback asked for: never a stand-in in its place

"""Fashion-MNIST, found offline where it already is, else downloaded through Keras."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from course_utils import config

FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def candidate_dirs() -> list[Path]:
    """Folders searched for the four files, in order: Keras' cache, then Debian's package."""
    return [config.keras_home() / "datasets" / "fashion-mnist", DEBIAN_DIR]


def find_dir() -> Path | None:
    """The first folder of :func:`candidate_dirs` that holds all four files, else ``None``."""
    for folder in candidate_dirs():
        if all((folder / f).is_file() for f in FILES):
            return folder
    return None


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), np.uint8, offset=offset)


def load_folder(folder: str | Path):
    """Read the four gzip files of ``folder`` into Keras' ``(x_train, y_train), (x_test, y_test)``.

    Raises
    ------
    FileNotFoundError
        Naming the files the folder should hold.
    """
    folder = Path(folder)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} does not hold the Fashion-MNIST files {', '.join(missing)}. Expected the "
            f"four files {', '.join(FILES)} (as Keras downloads them)."
        )
    y_train = _read_idx(folder / FILES[0], 8)
    x_train = _read_idx(folder / FILES[1], 16).reshape(len(y_train), 28, 28)
    y_test = _read_idx(folder / FILES[2], 8)
    x_test = _read_idx(folder / FILES[3], 16).reshape(len(y_test), 28, 28)
    return (x_train, y_train), (x_test, y_test)


def fashion_mnist():
    """Fashion-MNIST as Keras returns it: ``(x_train, y_train), (x_test, y_test)``, uint8.

    Looks in Keras' cache, then in Debian's ``dataset-fashion-mnist`` folder
    (``/usr/share/datasets/fashion-mnist``), and only then downloads through
    ``keras.datasets.fashion_mnist.load_data()``.

    Where there is no local copy the call downloads, so it is not an example that runs::

        (x_train, y_train), (x_test, y_test) = fashion_mnist()
        x_train.shape, x_test.shape  # ((60000, 28, 28), (10000, 28, 28))

    Examples
    --------
    >>> [str(d) for d in candidate_dirs()][-1]  # searched before any download
    '/usr/share/datasets/fashion-mnist'
    """
    folder = find_dir()
    if folder is not None:
        return load_folder(folder)
    if config.offline():
        raise FileNotFoundError(
            "Fashion-MNIST is not available offline: none of "
            f"{', '.join(str(d) for d in candidate_dirs())} holds {', '.join(FILES)}. "
            "Install it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or run "
            "`python -m course_utils fetch fashion_mnist` on a machine with internet."
        )
    import keras

    return keras.datasets.fashion_mnist.load_data()


def verify(folder: str | Path | None = None) -> dict[str, bool]:
    """Check the four files against the SHA-256 of their uncompressed content (the values in
    ``data/manifest.json``); return ``{file: ok}``."""
    import hashlib

    folder = Path(folder) if folder is not None else find_dir()
    if folder is None:
        raise FileNotFoundError("No Fashion-MNIST folder found; see fashion_mnist().")
    result = {}
    for name, digest in UNCOMPRESSED_SHA256.items():
        with gzip.open(folder / name, "rb") as fh:
            result[name] = hashlib.sha256(fh.read()).hexdigest() == digest
    return result


UNCOMPRESSED_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz":
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz":
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz":
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def few_per_class(images: np.ndarray, labels: np.ndarray, per_class: int,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of every class, drawn at random: a small labelled training set.

    Parameters
    ----------
    images, labels
        ``(N, ...)`` images and their ``(N,)`` integer labels.
    per_class
        How many of each class (every class must have that many).
    seed
        The draw's seed.

    Returns
    -------
    images, labels
        ``(classes * per_class, ...)`` and ``(classes * per_class,)``, the classes mixed.

    Examples
    --------
    >>> x, y = few_per_class(np.arange(12), np.array([0, 1, 2] * 4), 2)
    >>> x.shape, np.bincount(y).tolist(), bool(np.all(x % 3 == y))
    ((6,), [2, 2, 2], True)
    """
    labels = np.asarray(labels)
    if isinstance(per_class, bool) or not isinstance(per_class, int | np.integer) or per_class < 1:
        raise ValueError(f"per_class must be a whole number >= 1, got {per_class!r}.")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels: give one label each.")
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        if len(where) < per_class:
            raise ValueError(f"class {c} has {len(where)} images, fewer than per_class="
                             f"{per_class}.")
        picks.append(rng.choice(where, per_class, replace=False))
    keep = rng.permutation(np.concatenate(picks))
    return np.asarray(images)[keep], labels[keep]


def as_photos(images: np.ndarray, size: int, batch_size: int = 256) -> np.ndarray:
    """Fashion-MNIST's 28 x 28 grey images as the RGB photos an ImageNet network takes.

    Each image is resized (bilinear) to ``size x size`` and its grey level copied into the three
    colour channels; values stay in ``[0, 255]``. Then apply the network's own preprocessing.

    Parameters
    ----------
    images
        uint8 ``(N, 28, 28)`` as :func:`fashion_mnist` returns them (or ``(N, 28, 28, 1)``).
    size
        Side of the output in pixels.
    batch_size
        Images resized at a time (bounds the memory).

    Returns
    -------
    np.ndarray
        float32 ``(N, size, size, 3)`` in ``[0, 255]``.

    Examples
    --------
    >>> as_photos(np.full((2, 28, 28), 255, np.uint8), 56).shape
    (2, 56, 56, 3)
    """
    import tensorflow as tf

    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"Expected Fashion-MNIST images of shape (N, 28, 28), got {x.shape}.")
    if x.dtype != np.uint8:
        raise ValueError(f"Expected uint8 pixels in [0, 255] as fashion_mnist() gives them, got "
                         f"{x.dtype}; for floats in [0, 1] pass (x * 255).astype('uint8').")
    out = [tf.image.resize(x[i:i + batch_size, ..., None].astype("float32"), (size, size)).numpy()
           for i in range(0, len(x), batch_size)]
    grey = np.concatenate(out) if out else np.zeros((0, size, size, 1), "float32")
    return np.repeat(np.clip(grey, 0, 255), 3, axis=-1).astype("float32")

"""Real photo datasets: a Food-101 class subset and cats vs dogs, from a folder or from tfds.

Both return an :class:`ImageSet`: the list of files (or a tfds split), their labels and class
names, how many files were skipped as corrupt, and a ``dataset()`` method that builds a batched
``tf.data`` pipeline of ``(images in [0, 255], labels)`` at the size a model wants.

Expected folder layouts (as the datasets ship them):

- Food-101: ``food-101/images/<class>/<id>.jpg`` with ``food-101/meta/train.txt`` and
  ``food-101/meta/test.txt`` listing ``<class>/<id>`` per line (the dataset's own split).
- Cats vs dogs (Microsoft's ``PetImages``): ``PetImages/Cat/*.jpg`` and ``PetImages/Dog/*.jpg``.
  It has no split of its own: a file goes to ``test`` when a hash of its name falls in the
  last 20%, so the split is stable whatever the order of listing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from course_utils import config

FOOD_CLASSES = ("apple_pie", "pizza", "omelette")
PET_CLASSES = ("cat", "dog")


@dataclass
class ImageSet:
    """Files and labels of one split of a photo dataset."""

    class_names: tuple[str, ...]
    files: list[Path] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"))
    skipped: list[Path] = field(default_factory=list)
    tfds_split: object = None  # a tf.data.Dataset of (image, label) when loaded through tfds

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int, size: int | None = None) -> np.ndarray:
        """One image as float32 ``(H, W, 3)`` in ``[0, 255]``, resized to ``size`` if given."""
        from PIL import Image

        with Image.open(self.files[index]) as img:
            img = img.convert("RGB")
            if size is not None:
                img = img.resize((size, size), Image.BILINEAR)
            return np.asarray(img, dtype="float32")

    def dataset(self, image_size: int, batch_size: int = 32, shuffle: bool = False,
                seed: int = 0):
        """A batched ``tf.data.Dataset`` of ``(images, labels)``, images float32 in [0, 255]."""
        import tensorflow as tf

        if self.tfds_split is None and not self.files:
            raise ValueError(
                "This image set has no images, so there is nothing to make a pipeline of; "
                f"skipped as corrupt: {len(self.skipped)}."
            )

        def resize(image, label):
            image = tf.image.resize(tf.cast(image, tf.float32), (image_size, image_size))
            return image, label

        if self.tfds_split is not None:
            ds = self.tfds_split
        else:
            def read(path, label):
                raw = tf.io.read_file(path)
                return tf.io.decode_jpeg(raw, channels=3), label

            ds = tf.data.Dataset.from_tensor_slices(
                ([str(f) for f in self.files], self.labels.astype("int64"))
            ).map(read, num_parallel_calls=tf.data.AUTOTUNE)
        if shuffle:
            ds = ds.shuffle(4096, seed=seed)
        return ds.map(resize, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(2)


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")


def _root(root: str | Path | None, name: str) -> Path:
    return Path(root) if root is not None else config.data_dir() / name


def is_valid_jpeg(path: Path) -> bool:
    """True when ``path`` is a JPEG that decodes to the end (the PetImages set has empty,
    truncated and non-JPEG files).

    Decided by decoding, not by a marker: camera JPEGs start with an Exif segment and have no
    JFIF one. The decode runs at 1/8 scale (the JPEG's own DCT scaling), which still reads every
    byte of the image data, so a truncated file fails here and not midway through a pipeline.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.format != "JPEG":
                return False
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
        return True
    except Exception:  # noqa: BLE001 - any unreadable file is corrupt for our purpose
        return False


def _readable(name: str, root: Path, files: list[Path], labels: list[int],
              classes: Sequence[str]) -> ImageSet:
    """An :class:`ImageSet` of the ``files`` that decode; the others are skipped, counted and
    named (the first few) on screen."""
    ok = [is_valid_jpeg(f) for f in files]
    skipped = [f for f, good in zip(files, ok) if not good]
    if skipped:
        shown = ", ".join(str(f.relative_to(root)) for f in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        print(f"{name}: skipped {len(skipped)} corrupt or non-JPEG files in {root}: "
              f"{shown}{more}")
    return ImageSet(tuple(classes), [f for f, good in zip(files, ok) if good],
                    np.asarray([y for y, good in zip(labels, ok) if good], "int64"), skipped)


# --------------------------------------------------------------------------------------------
# Food-101
# --------------------------------------------------------------------------------------------

def food101_folder(root: str | Path, classes: Sequence[str] = FOOD_CLASSES,
                   split: str = "train") -> ImageSet:
    """A Food-101 class subset from an extracted ``food-101/`` folder (see module docstring).

    Files that do not decode are skipped and named; a file listed in ``meta/`` but missing, or
    a ``meta/`` file that lists none of ``classes``, is an error saying how to extract again.

    Examples
    --------
    A miniature folder with the layout of ``food-101.tar.gz``:

    >>> import tempfile
    >>> from PIL import Image
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = Path(tmp.name, "food-101")
    >>> for dish in ("apple_pie", "pizza", "omelette", "sushi"):
    ...     (root / "images" / dish).mkdir(parents=True)
    ...     Image.new("RGB", (16, 16)).save(root / "images" / dish / "1.jpg")
    >>> (root / "meta").mkdir()
    >>> listing = ["apple_pie/1", "pizza/1", "omelette/1", "sushi/1"]  # <class>/<id> per line
    >>> _ = (root / "meta" / "test.txt").write_text("\\n".join(listing))
    >>> ds = food101_folder(root, split="test")
    >>> len(ds), ds.class_names, ds.labels.tolist()
    (3, ('apple_pie', 'pizza', 'omelette'), [0, 1, 2])
    >>> tmp.cleanup()
    """
    _check_split(split)
    root = Path(root)
    meta = root / "meta" / f"{split}.txt"
    if not meta.is_file() or not (root / "images").is_dir():
        raise FileNotFoundError(
            f"{root} is not an extracted Food-101 folder: expected {root}/meta/train.txt, "
            f"{root}/meta/test.txt and {root}/images/<class>/<id>.jpg (the layout of "
            "food-101.tar.gz). Run `python -m course_utils fetch food101` or extract the "
            "archive there."
        )
    wanted = {c: i for i, c in enumerate(classes)}
    available = {p.name for p in (root / "images").iterdir() if p.is_dir()}
    unknown = [c for c in classes if c not in available]
    if unknown:
        raise ValueError(
            f"Food-101 has no class {', '.join(unknown)}; available: {', '.join(sorted(available))}"
        )
    files, labels = [], []
    for line in meta.read_text().split():
        cls = line.split("/")[0]
        if cls in wanted:
            files.append(root / "images" / f"{line}.jpg")
            labels.append(wanted[cls])
    if not files:
        raise ValueError(
            f"{meta} lists no image of the classes {', '.join(classes)}: the file is empty or "
            f"cut short. Delete {root} and run `python -m course_utils fetch food101` to "
            "extract the archive again."
        )
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]} is listed in {meta} but missing ({len(missing)} listed file(s) "
            f"missing in all): the extraction is incomplete. Delete {root} and run "
            "`python -m course_utils fetch food101` to extract the archive again."
        )
    return _readable("food101", root, files, labels, classes)


def _tfds_subset(name: str, split: str, class_names: Sequence[str], wanted: Sequence[str],
                 folder: Path):
    """The classes ``wanted`` of tfds' dataset ``name``; ``folder`` is where the folder source
    would have been (named, with the command that fetches it, when tfds is not installed)."""
    import tensorflow as tf

    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise FileNotFoundError(
            f"{name} is not at {folder}, and tensorflow_datasets (the other source) is not "
            f"installed. Run `python -m course_utils fetch {name}` to download and extract it "
            "there (or `pip install tensorflow-datasets` to load it through tfds)."
        ) from None
    ds, ds_info = tfds.load(name, split=split, as_supervised=True, with_info=True,
                            data_dir=str(config.data_dir() / "tfds"))
    all_names = ds_info.features["label"].names
    ids = [all_names.index(c) for c in wanted]
    table = tf.constant([ids.index(i) if i in ids else -1 for i in range(len(all_names))])
    ds = ds.map(lambda x, y: (x, tf.gather(table, y))).filter(lambda x, y: y >= 0)
    return ImageSet(tuple(class_names), tfds_split=ds)


def food101(classes: Sequence[str] = FOOD_CLASSES, split: str = "train",
            root: str | Path | None = None, source: str = "auto") -> ImageSet:
    """A Food-101 class subset (default apple pie, pizza, omelette), split as the dataset does.

    Parameters
    ----------
    classes
        Food-101 class names, in label order.
    split
        ``"train"`` (750 images per class) or ``"test"`` (250 per class).
    root
        The extracted ``food-101/`` folder (default ``data_dir()/food-101``).
    source
        ``"folder"``, ``"tfds"`` (``tensorflow_datasets``' ``food101``, whose ``validation``
        split is the test split), or ``"auto"``: the folder if it exists, else tfds.
    """
    _check_split(split)
    folder = _root(root, "food-101")
    if source == "folder" or (source == "auto" and (folder / "meta").is_dir()):
        return food101_folder(folder, classes, split)
    if source not in ("auto", "tfds"):
        raise ValueError(f"source must be 'auto', 'folder' or 'tfds', got {source!r}.")
    return _tfds_subset("food101", "train" if split == "train" else "validation", classes,
                        classes, folder)


# --------------------------------------------------------------------------------------------
# Cats vs dogs
# --------------------------------------------------------------------------------------------

def _in_test(name: str, test_fraction: float) -> bool:
    h = int(hashlib.md5(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h >= 1 - test_fraction


def cats_vs_dogs_folder(root: str | Path, split: str = "train",
                        test_fraction: float = 0.2) -> ImageSet:
    """Cats vs dogs from a ``PetImages/{Cat,Dog}`` folder; corrupt files are skipped and counted.

    Examples
    --------
    A miniature ``PetImages`` folder, with one file cut short as in Microsoft's archive:

    >>> import tempfile
    >>> from PIL import Image
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for pet in ("Cat", "Dog"):
    ...     Path(tmp.name, pet).mkdir()
    ...     for i in range(5):
    ...         Image.new("RGB", (16, 16)).save(Path(tmp.name, pet, f"{i}.jpg"))
    >>> _ = Path(tmp.name, "Cat", "5.jpg").write_bytes(b"cut short")
    >>> train, test = cats_vs_dogs_folder(tmp.name), cats_vs_dogs_folder(tmp.name, "test")
    cats_vs_dogs: skipped 1 corrupt or non-JPEG files in ...: Cat/5.jpg
    >>> len(train) + len(test), len(train.skipped) + len(test.skipped), train.class_names
    (10, 1, ('cat', 'dog'))
    >>> tmp.cleanup()
    """
    _check_split(split)
    root = Path(root)
    dirs = [root / "Cat", root / "Dog"]
    if not all(d.is_dir() for d in dirs):
        raise FileNotFoundError(
            f"{root} is not a PetImages folder: expected {root}/Cat/*.jpg and {root}/Dog/*.jpg "
            "(the layout of Microsoft's kagglecatsanddogs archive). Run "
            "`python -m course_utils fetch cats_vs_dogs` or extract the archive there."
        )
    files, labels = [], []
    for label, folder in enumerate(dirs):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in (".jpg", ".jpeg"):
                continue
            if (split == "test") != _in_test(f"{folder.name}/{path.name}", test_fraction):
                continue
            files.append(path)
            labels.append(label)
    return _readable("cats_vs_dogs", root, files, labels, PET_CLASSES)


def cats_vs_dogs(split: str = "train", root: str | Path | None = None,
                 source: str = "auto") -> ImageSet:
    """Cats vs dogs: the ``PetImages`` folder (default ``data_dir()/PetImages``) or tfds'
    ``cats_vs_dogs`` (its single split cut 80/20 into train/test)."""
    _check_split(split)
    folder = _root(root, "PetImages")
    if source == "folder" or (source == "auto" and folder.is_dir()):
        return cats_vs_dogs_folder(folder, split)
    if source not in ("auto", "tfds"):
        raise ValueError(f"source must be 'auto', 'folder' or 'tfds', got {source!r}.")
    return _tfds_subset("cats_vs_dogs", "train[:80%]" if split == "train" else "train[80%:]",
                        PET_CLASSES, ("cat", "dog"), folder)

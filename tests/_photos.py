"""Miniature copies of the real photo datasets, with their real layout, made from photos that
come installed with scikit-image and matplotlib (nothing is downloaded).

- :func:`make_food101`: ``food-101/images/<class>/<id>.jpg`` and ``food-101/meta/{train,test}.txt``
  listing ``<class>/<id>`` per line, as in ``food-101.tar.gz``;
- :func:`make_pet_images`: ``PetImages/Cat/<n>.jpg`` and ``PetImages/Dog/<n>.jpg``, with one
  truncated JPEG among the cats, as Microsoft's archive has corrupt files.

Each class is drawn from its own photo, in random crops, some mirrored, so that the images of
a class differ from each other but resemble each other more than the other classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

#: The source photo of each class: scikit-image's test images and matplotlib's sample photo.
FOOD_SOURCES = {"apple_pie": "coffee", "pizza": "rocket", "omelette": "astronaut"}
PET_SOURCES = {"Cat": "chelsea", "Dog": "grace_hopper"}

#: The file of the cats' folder that is cut short, as the real dataset has broken files.
CORRUPT_CAT = "666.jpg"


def photo(name: str) -> np.ndarray:
    """An installed RGB photo as ``uint8 (H, W, 3)``: a ``skimage.data`` image, or
    ``"grace_hopper"`` from matplotlib's sample data."""
    if name == "grace_hopper":
        from matplotlib.cbook import get_sample_data

        with Image.open(get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
            return np.asarray(img.convert("RGB"))
    import skimage.data

    return np.asarray(getattr(skimage.data, name)())[..., :3]


def variants(source: np.ndarray, n: int, seed: int, out: int = 112) -> list[Image.Image]:
    """``n`` random crops (60-95% of each side) of ``source``, half of them mirrored, resized
    to ``out`` pixels on their longer side."""
    rng = np.random.default_rng(seed)
    h, w = source.shape[:2]
    images = []
    for i in range(n):
        ch, cw = (rng.uniform(0.6, 0.95, 2) * (h, w)).astype(int)
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = source[top:top + ch, left:left + cw]
        if i % 2:
            crop = crop[:, ::-1]
        img = Image.fromarray(np.ascontiguousarray(crop))
        scale = out / max(img.size)
        images.append(img.resize((max(1, round(img.width * scale)),
                                  max(1, round(img.height * scale))), Image.BILINEAR))
    return images


def _write(images: list[Image.Image], folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for img, name in zip(images, names, strict=True):
        img.save(folder / f"{name}.jpg", "JPEG", quality=90)


def make_food101(parent: Path, n_train: int = 6, n_test: int = 2,
                 sources: Mapping[str, str] = FOOD_SOURCES) -> Path:
    """A miniature ``food-101/`` folder under ``parent``; returns its path."""
    root = parent / "food-101"
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for c, (cls, src) in enumerate(sources.items()):
        ids = [str(1000003 + 7919 * (c * 100 + i)) for i in range(n_train + n_test)]
        _write(variants(photo(src), len(ids), seed=c), root / "images" / cls, ids)
        lines["train"] += [f"{cls}/{i}" for i in ids[:n_train]]
        lines["test"] += [f"{cls}/{i}" for i in ids[n_train:]]
    (root / "meta").mkdir(parents=True)
    for split, listed in lines.items():
        (root / "meta" / f"{split}.txt").write_text("\n".join(listed) + "\n")
    return root


def make_pet_images(parent: Path, n: int = 10, sources: Mapping[str, str] = PET_SOURCES) -> Path:
    """A miniature ``PetImages/`` folder under ``parent``, with one truncated JPEG in ``Cat``
    (:data:`CORRUPT_CAT`); returns its path."""
    root = parent / "PetImages"
    for c, (folder, src) in enumerate(sources.items()):
        _write(variants(photo(src), n, seed=10 + c), root / folder, [str(i) for i in range(n)])
    whole = (root / "Cat" / "0.jpg").read_bytes()
    (root / "Cat" / CORRUPT_CAT).write_bytes(whole[: len(whole) // 2])
    return root

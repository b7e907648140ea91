"""Sample photos that ship inside installed packages: no download, ever."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLES = {
    "chelsea": "scikit-image: Chelsea the cat (a tabby)",
    "coffee": "scikit-image: a cup of coffee",
    "astronaut": "scikit-image: astronaut Eileen Collins",
    "rocket": "scikit-image: a rocket on its launch pad",
    "grace_hopper": "matplotlib: Rear Admiral Grace Hopper in uniform",
}


def _raw(name: str) -> np.ndarray:
    if name == "grace_hopper":
        import matplotlib
        from PIL import Image

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    from skimage import data

    return getattr(data, name)()


def _center_crop(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[top : top + s, left : left + s]


def sample_image(name: str, size: int | None = None, crop: bool = True) -> np.ndarray:
    """A sample photo as float32 ``(H, W, 3)`` RGB in ``[0, 255]``.

    Parameters
    ----------
    name
        One of :data:`SAMPLES` (``"chelsea"``, ``"coffee"``, ``"astronaut"``, ``"rocket"``,
        ``"grace_hopper"``).
    size
        Resize to ``size x size`` (after a centre crop to a square when ``crop``).
    crop
        Centre-crop to a square first, so resizing does not distort.

    Examples
    --------
    >>> sample_image("chelsea", size=224).shape
    (224, 224, 3)
    """
    if name not in SAMPLES:
        raise ValueError(f"Unknown sample image {name!r}. Valid names: {', '.join(SAMPLES)}.")
    img = _raw(name)
    if crop:
        img = _center_crop(img)
    if size is not None:
        from PIL import Image

        img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
    return img.astype("float32")

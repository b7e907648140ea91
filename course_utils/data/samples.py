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


def _strip(img: np.ndarray) -> np.ndarray:
    """The central vertical strip of ``img`` whose width is half its height (or all of it)."""
    h, w = img.shape[:2]
    width = min(w, h // 2)
    left = (w - width) // 2
    return img[:, left : left + width]


def two_photos(left: str = "chelsea", right: str = "coffee",
               size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """Two sample photos side by side in one ``size x size`` picture, with the mask of each.

    The Grad-CAM paper's demonstration needs one image holding two classes: each half is the
    central strip (half as wide as it is tall) of one photo, resized to ``size // 2 x size``.
    With the defaults, a cat on the left and a cup of espresso on the right.

    Parameters
    ----------
    left, right
        Names from :data:`SAMPLES`.
    size
        The picture's side in pixels (even, at least 8).

    Returns
    -------
    image
        float32 ``(size, size, 3)`` RGB in ``[0, 255]``.
    masks
        bool ``(2, size, size)``: where the left photo is, where the right photo is.

    Examples
    --------
    >>> image, masks = two_photos(size=64)
    >>> image.shape, masks.shape, int(masks[0].sum()), bool((masks[0] ^ masks[1]).all())
    ((64, 64, 3), (2, 64, 64), 2048, True)
    """
    from PIL import Image

    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 8 or size % 2:
        raise ValueError(f"size must be an even whole number of pixels >= 8, got {size!r}.")
    halves = []
    for name in (left, right):
        if name not in SAMPLES:
            raise ValueError(f"Unknown sample image {name!r}. Valid names: {', '.join(SAMPLES)}.")
        strip = Image.fromarray(_strip(_raw(name)))
        halves.append(np.asarray(strip.resize((size // 2, size), Image.BILINEAR)))
    image = np.concatenate(halves, axis=1).astype("float32")
    masks = np.zeros((2, size, size), bool)
    masks[0, :, : size // 2] = True
    masks[1, :, size // 2 :] = True
    return image, masks

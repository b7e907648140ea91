"""Validation shared by every metric: maps, masks and images must agree, and contain numbers.

A metric computed on a map of the wrong size or on NaNs would return a plausible-looking number;
these checks turn such mistakes into a ``ValueError`` that says what was expected.
"""

from __future__ import annotations

import numpy as np


def _as_array(value, what: str) -> np.ndarray:
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    arr = np.asarray(value)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == bool
    ):
        raise TypeError(f"{what} must be a numeric array, got dtype {arr.dtype}.")
    return arr


def check_maps(maps, shape: tuple | None = None, what: str = "maps") -> np.ndarray:
    """Validate attribution maps and return them as float32 ``(N, H, W)``.

    Parameters
    ----------
    maps
        One map ``(H, W)`` or a batch ``(N, H, W)`` (as returned by ``attribution.METHODS``).
    shape
        The expected ``(N, H, W)`` (``N`` may be ``None``), e.g. from the images the maps
        explain; ``None`` skips the comparison.
    what
        Name used in error messages.

    Raises
    ------
    ValueError
        For a wrong rank, a shape that does not match ``shape``, an empty batch, or NaN/inf.

    Examples
    --------
    >>> check_maps(np.zeros((4, 4)), shape=(1, 4, 4)).shape
    (1, 4, 4)
    """
    arr = _as_array(maps, what)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(
            f"{what} must be one map (H, W) or a batch (N, H, W), got shape {arr.shape}. "
            "Reduce the channel axis first (attribution methods return (N, H, W))."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is an empty batch.")
    if shape is not None:
        want = tuple(shape)
        n_ok = want[0] is None or want[0] == arr.shape[0]
        if not n_ok or tuple(arr.shape[1:]) != tuple(want[1:]):
            raise ValueError(
                f"{what} have shape {arr.shape} but the images/masks are {want} "
                "(N, H, W): give one map per image at the image's resolution."
            )
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(
            f"{what} contain {bad} NaN or infinite value(s); the method that produced them "
            "failed (check its inputs and options) - a metric of such a map means nothing."
        )
    return np.ascontiguousarray(arr, dtype="float32")


def check_masks(masks, shape: tuple, what: str = "masks") -> np.ndarray:
    """Validate region masks ``(N, H, W)`` (or one ``(H, W)`` for all) and return them as bool.

    Non-boolean masks must hold only 0 and 1. Every mask must contain at least one pixel.

    Examples
    --------
    >>> check_masks(np.eye(3), shape=(2, 3, 3)).shape
    (2, 3, 3)
    """
    arr = _as_array(masks, what)
    if arr.ndim == 2:
        arr = np.broadcast_to(arr, (shape[0],) + arr.shape)
    if arr.ndim != 3 or tuple(arr.shape) != tuple(shape):
        raise ValueError(
            f"{what} have shape {arr.shape}; expected {tuple(shape)} (one (H, W) mask per map)."
        )
    if arr.dtype != bool:
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError(f"{what} must be boolean (or 0/1), got other values.")
        arr = arr.astype(bool)
    empty = ~arr.any(axis=(1, 2))
    if np.any(empty):
        raise ValueError(
            f"{what} {np.flatnonzero(empty)[:5].tolist()} are empty: a region must contain at "
            "least one pixel."
        )
    return np.ascontiguousarray(arr)


def check_pairs(a: np.ndarray, b: np.ndarray, what: str = "maps") -> None:
    """Two map batches must have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"Cannot compare {what} of shapes {a.shape} and {b.shape}.")


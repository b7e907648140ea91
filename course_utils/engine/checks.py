"""Validation of the methods' options, in one place.

Every attribution method checks its options here before any work is done, so that a wrong
option gives the same kind of message everywhere: the option's name, what is expected (with an
example) and what was given, instead of a NumPy or TensorFlow error from deep inside the call.
A wrong *type* (``"0.1"``, ``None``) raises ``TypeError``; a wrong *value* (``inf``, ``-1``,
``2.5`` where a count is expected) raises ``ValueError``.

Examples
--------
>>> integer(64, "steps")
64
>>> number("0.1", "noise_level", minimum=0.0)
Traceback (most recent call last):
...
TypeError: noise_level must be a finite number >= 0; got '0.1' (str).
"""

from __future__ import annotations

import numbers

import numpy as np


def _hint(example: str) -> str:
    return f" ({example})" if example else ""


def _shown(value) -> str:
    return f"{value!r} ({type(value).__name__})" if isinstance(value, str) else repr(value)


def integer(value, name: str, *, minimum: int = 1, example: str = "") -> int:
    """``value`` as an ``int >= minimum``; whole floats (``3.0``) are accepted, ``2.5``,
    ``True``, ``inf``, strings and ``None`` are not.

    Examples
    --------
    >>> integer(3.0, "window")
    3
    >>> integer(2.5, "window", example="pixels, e.g. 8")
    Traceback (most recent call last):
    ...
    ValueError: window must be an integer >= 1 (pixels, e.g. 8); got 2.5.
    """
    expected = f"{name} must be an integer >= {minimum}{_hint(example)}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{expected}; got {_shown(value)}.")
    if not np.isfinite(value) or value != int(value) or int(value) < minimum:
        raise ValueError(f"{expected}; got {value!r}.")
    return int(value)


def number(value, name: str, *, minimum: float | None = None, positive: bool = False,
           example: str = "") -> float:
    """``value`` as a finite ``float`` (``>= minimum``, or ``> 0`` with ``positive=True``).

    Examples
    --------
    >>> number(float("inf"), "noise_level", minimum=0.0, example="e.g. 0.15")
    Traceback (most recent call last):
    ...
    ValueError: noise_level must be a finite number >= 0 (e.g. 0.15); got inf.
    """
    bound = " > 0" if positive else (f" >= {minimum:g}" if minimum is not None else "")
    expected = f"{name} must be a finite number{bound}{_hint(example)}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{expected}; got {_shown(value)}.")
    value = float(value)
    if (not np.isfinite(value) or (positive and value <= 0)
            or (minimum is not None and value < minimum)):
        raise ValueError(f"{expected}; got {value!r}.")
    return value


def seed(value) -> int:
    """A random seed: an integer ``>= 0`` (the same seed gives the same result)."""
    return integer(value, "seed", minimum=0, example="e.g. 0; the same seed gives the same map")


def pair(value, name: str, example: str = "") -> tuple[int, int]:
    """A positive integer or a pair ``(height, width)`` of them.

    Examples
    --------
    >>> pair(4, "window"), pair((4, 2), "window")
    ((4, 4), (4, 2))
    """
    expected = f"{name} must be a positive integer or a pair (height, width) of them"
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{expected}{_hint(example)}; got {_shown(value)}.")
    values = (value, value) if np.ndim(value) == 0 else tuple(np.ravel(value).tolist())
    if len(values) != 2 or np.ndim(value) > 1:
        raise ValueError(f"{expected}{_hint(example)}; got {value!r}.")
    return tuple(integer(v, name, example=example) for v in values)


def choice(value, name: str, options: tuple) -> str:
    """One of ``options`` (strings)."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; "
                         f"got {_shown(value)}.")
    return value


def finite(values: np.ndarray, name: str, expected: str = "") -> np.ndarray:
    """``values`` unchanged if it holds no NaN or infinity, else a ``ValueError`` naming the
    option (``expected`` says what a valid value looks like)."""
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s){_hint(expected)}.")
    return values


def at_least(value, name: str, low: float, *, strict: bool = False) -> float:
    """``value`` as a float, finite and ``>= low`` (``> low`` when ``strict``); otherwise an
    error naming the option (a NaN or infinite option would silently give NaN pictures).

    Examples
    --------
    >>> at_least(0.5, "tv", 0.0)
    0.5
    >>> at_least(1.0, "octave_scale", 1.0, strict=True)
    Traceback (most recent call last):
    ...
    ValueError: octave_scale must be > 1 (a finite number), got 1.0.
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}.") from None
    if not np.isfinite(x) or x < low or (strict and x == low):
        raise ValueError(
            f"{name} must be {'>' if strict else '>='} {low:g} (a finite number), got {value!r}."
        )
    return x


def indices(values, n: int, what: str, layer_name: str) -> np.ndarray:
    """Integer indices into an axis of length ``n`` (channels, classes of layer
    ``layer_name``), as a flat int64 array; an error lists the valid range.

    Examples
    --------
    >>> indices([0, 2], 3, "class", "d").tolist()
    [0, 2]
    >>> indices(3, 3, "class", "d")
    Traceback (most recent call last):
    ...
    ValueError: Class index 3 is out of range for layer 'd', which has 3 classes: valid ...
    """
    arr = np.atleast_1d(np.asarray(values))
    if arr.size == 0:
        raise ValueError(f"Give at least one {what} index for layer {layer_name!r}.")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what.capitalize()} indices must be integers, got {values!r}.")
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ValueError(
            f"{what.capitalize()} index {int(bad[0])} is out of range for layer {layer_name!r}, "
            f"which has {n} {what}{'es' if what.endswith('s') else 's'}: "
            f"valid indices are 0..{n - 1}."
        )
    return arr.astype("int64").ravel()

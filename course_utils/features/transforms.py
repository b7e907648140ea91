"""Transformation robustness: random pad, jitter, scale and rotation at every optimization step.

A picture that excites a unit only at one exact pixel alignment is high-frequency noise; asking
it to work under small random shifts, zooms and turns leaves the structure the unit really
responds to (Lucid; Olah et al., "Feature Visualization", Distill 2017).

All of pad + jitter + scale + rotation is one projective resampling per image (bilinear;
``tf.raw_ops.ImageProjectiveTransformV3``), so a batch of 64 images, each with its own random
transform, costs one op. Area outside the image is filled with grey (0.5): that is the padding.
The random numbers are drawn up front with NumPy, one generator per unit and seed, so a unit's
sequence of transforms does not depend on the other units in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class Transforms:
    """Random transforms applied at every step; see the module docstring.

    Parameters
    ----------
    pad
        Grey border in pixels around the image before the other transforms.
    jitter
        Largest random shift in pixels (integer, each axis). Lucid's ``jitter(d)`` crops
        ``d`` pixels at a random offset, a shift of up to ``d / 2``.
    scales
        Zoom factors drawn from uniformly at each step.
    angle
        Largest rotation in degrees (integer angles in ``[-angle, angle]``).

    Examples
    --------
    >>> t = Transforms.lucid()
    >>> t.sample(np.random.default_rng(0), steps=3).shape
    (3, 4)
    """

    pad: int = 12
    jitter: int = 6
    scales: tuple[float, ...] = tuple(1 + (i - 5) / 50 for i in range(11))
    angle: int = 10

    def __post_init__(self):
        for name in ("pad", "jitter", "angle"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"Transforms.{name} must be a non-negative integer, got {v!r}.")
        if not self.scales or any(not s > 0 for s in self.scales):
            raise ValueError(f"Transforms.scales must be positive factors, got {self.scales!r}.")

    @classmethod
    def lucid(cls) -> Transforms:
        """Lucid's ``standard_transforms``: pad 12, jitter 8 then 4 (shifts up to +-6), scale
        0.9-1.1, rotate +-10."""
        return cls()

    @classmethod
    def none(cls) -> Transforms:
        """No transformation (plain gradient ascent)."""
        return cls(pad=0, jitter=0, scales=(1.0,), angle=0)

    def for_size(self, h: int, w: int, reference: int = 128) -> Transforms:
        """These transforms shrunk for pictures smaller than ``reference`` pixels.

        Lucid's pixel amounts were chosen for 128-px pictures and up; on a 28-px picture a
        12-px pad and 6-px jitter would swamp it. Pad and jitter shrink in proportion (at
        least 1 px when nonzero); scales and angles stay.

        Examples
        --------
        >>> Transforms.lucid().for_size(32, 32).pad
        3
        """
        f = min(1.0, min(h, w) / reference)
        if f >= 1.0:
            return self

        def shrink(v: int) -> int:
            return 0 if v == 0 else max(1, int(round(v * f)))

        return replace(self, pad=shrink(self.pad), jitter=shrink(self.jitter))

    @property
    def is_identity(self) -> bool:
        """True when no transform is applied."""
        return self.pad == 0 and self.jitter == 0 and set(self.scales) == {1.0} and self.angle == 0

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        """Size of the transformed image for an ``h`` x ``w`` one (grows by the padding and
        shrinks by the jitter, as Lucid's pad-then-crop does)."""
        grow = 2 * self.pad - 2 * self.jitter
        return max(h + grow, 1), max(w + grow, 1)

    def sample(self, rng: np.random.Generator, steps: int) -> np.ndarray:
        """``(steps, 4)`` random draws: shift y, shift x, scale, angle (degrees)."""
        shift = rng.integers(-self.jitter, self.jitter + 1, size=(steps, 2))
        scale = rng.choice(np.asarray(self.scales, dtype="float64"), size=steps)
        angle = rng.integers(-self.angle, self.angle + 1, size=steps)
        return np.column_stack([shift, scale, angle]).astype("float32")


def apply(images: tf.Tensor, draws: tf.Tensor, out_hw: tuple[int, int]) -> tf.Tensor:
    """Resample every image with its own draw ``(shift y, shift x, scale, angle)``.

    The output (size ``out_hw``) shows the input zoomed by ``scale`` and turned by ``angle``
    about its centre, shifted by the draw; outside the input is grey 0.5.
    """
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)
    oh, ow = out_hw
    ty, tx, s, a = draws[:, 0], draws[:, 1], draws[:, 2], draws[:, 3] * (np.pi / 180.0)
    cos, sin = tf.cos(a) / s, tf.sin(a) / s
    # output pixel u -> input pixel M (u - c_out + t) + c_in, M = R(-a) / s (x = column, y = row)
    ux = tx - (ow - 1) / 2.0
    uy = ty - (oh - 1) / 2.0
    a0, a1 = cos, sin
    b0, b1 = -sin, cos
    a2 = a0 * ux + a1 * uy + (w - 1) / 2.0
    b2 = b0 * ux + b1 * uy + (h - 1) / 2.0
    zeros = tf.zeros_like(a0)
    matrix = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=matrix,
        output_shape=tf.constant([oh, ow], tf.int32),
        fill_value=tf.constant(0.5, tf.float32),
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )

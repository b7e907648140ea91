"""How the optimized image is parameterized (Lucid; Olah et al., "Feature Visualization", 2017).

``pixel``
    the image itself (plus a sigmoid to keep it in ``[0, 1]``, unless ``raw``);
``fft``
    the image's 2-D Fourier spectrum, each frequency ``f`` scaled by
    ``1 / max(f, 1 / max(h, w)) ** decay_power`` (Lucid's ``fft_image``): gradient steps then
    change low frequencies as easily as high ones, instead of piling up pixel noise. A unit's
    parameters are ``(c, h, w // 2 + 1, 2)``: real and imaginary part last, read as one
    complex spectrum without a copy (:func:`spectrum_to_image`);
``decorrelate``
    the three channels are mixed by the square root of ImageNet's colour correlation matrix
    (Lucid's ``color_correlation_svd_sqrt``), so each parameter moves a natural colour
    direction, and a sigmoid maps to ``[0, 1]``.

A :class:`Param` turns a batch of parameter tensors into pixel-space images in ``[0, 1]``
inside a compiled function; :meth:`Param.init` draws one initial parameter per unit from its own
seeded generator, so a unit's picture does not depend on which other units share the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

#: Square root of ImageNet's colour correlation (Lucid, ``lucid.optvis.param.color``).
COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype="float32"
)
_MAX_NORM = float(np.max(np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0)))
COLOR_CORRELATION_NORMALIZED = COLOR_CORRELATION_SVD_SQRT / _MAX_NORM


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """Frequency magnitude of every bin of a real 2-D FFT of an ``h`` x ``w`` image.

    Examples
    --------
    >>> rfft2d_freqs(4, 4).shape
    (4, 3)
    """
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def spectrum_to_image(params: tf.Tensor, scale: np.ndarray, h: int, w: int) -> tf.Tensor:
    """``irfft2d`` of the spectrum ``params * scale`` (a TF op): ``(..., h, w // 2 + 1, 2)``
    real and imaginary parts -> ``(..., h, w)`` real images.

    ``scale`` (``(h, w // 2 + 1)``, real) multiplies each frequency. The backward pass is
    written out: the gradient of an inverse real FFT is the forward real FFT of the incoming
    gradient, times ``1 / (h w)`` and times 2 for the frequencies that stand for two
    (TensorFlow's own rule for ``irfft2d``), times ``scale``. Both passes read and write the
    real/imaginary pairs as complex numbers in place (``tf.bitcast``), so a step touches the
    spectrum once each way; the composition of ``tf.complex``, ``irfft2d`` and slicing that
    autodiff builds took 1.1-2.9x the time (piece ``render_autodiff`` of ``python -m
    benchmarks.features --pieces``; README, "Speed, measured").

    Examples
    --------
    >>> import numpy as np
    >>> spec = np.zeros((1, 4, 3, 2), "float32"); spec[0, 0, 0, 0] = 16.0  # the mean only
    >>> spectrum_to_image(tf.constant(spec), np.ones((4, 3), "float32"), 4, 4).numpy().ravel()
    array([1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.], dtype=float32)
    """
    wf = w // 2 + 1
    # TensorFlow's irfft2d gradient: 1 for the zero frequency (and the Nyquist one when w is
    # even), 2 for the others (each stands for itself and its mirror image)
    twice = np.full(wf, 2.0, "float32")
    twice[0] = 1.0
    if w % 2 == 0:
        twice[-1] = 1.0
    forward = np.repeat(np.asarray(scale, "float32")[..., None], 2, axis=-1)
    backward = forward * (twice / (h * w))[None, :, None]

    @tf.custom_gradient
    def render(q):
        image = tf.signal.irfft2d(tf.bitcast(q * forward, tf.complex64), fft_length=[h, w])

        def grad(g):
            return tf.bitcast(tf.signal.rfft2d(g, fft_length=[h, w]), tf.float32) * backward

        return image, grad

    return render(params)


@dataclass(frozen=True)
class Param:
    """An image parameterization; see the module docstring.

    Parameters
    ----------
    kind
        ``"fft"``, ``"pixel"`` (sigmoid of a free pixel tensor) or ``"raw"`` (the pixels
        themselves, as in plain gradient ascent; clip for display).
    decorrelate
        Mix channels through the decorrelated colour basis (3-channel images only).
    decay_power
        Exponent of the ``1/f`` frequency scaling (``fft`` only).
    sd
        Standard deviation of the initial parameters (Lucid: 0.01).

    Examples
    --------
    >>> p = Param("fft")
    >>> x = p.to_image(tf.constant(p.init([0, 1], 8, 8, 3)), 8, 8, 3)
    >>> tuple(x.shape), bool(tf.reduce_all((x >= 0) & (x <= 1)))
    ((2, 8, 8, 3), True)
    """

    kind: str = "fft"
    decorrelate: bool = True
    decay_power: float = 1.0
    sd: float = 0.01

    def __post_init__(self):
        if self.kind not in ("fft", "pixel", "raw"):
            raise ValueError(f"Param kind must be 'fft', 'pixel' or 'raw', not {self.kind!r}.")
        if not self.sd > 0:
            raise ValueError(f"sd must be positive, got {self.sd!r}.")

    def shape(self, h: int, w: int, c: int) -> tuple:
        """Shape of one unit's parameter tensor."""
        if self.kind == "fft":
            return (c, h, w // 2 + 1, 2)
        return (h, w, c)

    def init(self, seeds, h: int, w: int, c: int) -> np.ndarray:
        """Initial parameters, one per seed; each seed is an int or a tuple of ints."""
        out = []
        for s in seeds:
            rng = np.random.default_rng(s)
            if self.kind == "raw":
                # the classic Keras example: grey plus a little uniform noise
                out.append(0.5 + (rng.uniform(size=(h, w, c)) - 0.5) * 0.125)
            elif self.kind == "fft":
                # drawn as (real/imaginary, c, h, w') as before the pairs moved last: the same
                # seed gives the same starting spectrum
                out.append(np.moveaxis(rng.normal(0.0, self.sd, size=(2, c, h, w // 2 + 1)),
                                       0, -1))
            else:
                out.append(rng.normal(0.0, self.sd, size=self.shape(h, w, c)))
        return np.asarray(out, dtype="float32")

    def to_image(self, p: tf.Tensor, h: int, w: int, c: int) -> tf.Tensor:
        """Map a batch of parameters to images ``(B, h, w, c)`` (in ``[0, 1]`` unless raw)."""
        if self.kind == "raw":
            return p
        if self.kind == "fft":
            freqs = rfft2d_freqs(h, w)
            scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** self.decay_power
            scale = (scale * np.sqrt(h * w) / 4.0).astype("float32")
            img = spectrum_to_image(p, scale, h, w)  # (B, c, h, w)
            x = tf.transpose(img, (0, 2, 3, 1))
        else:
            x = p
        if self.decorrelate and c == 3:
            x = tf.tensordot(x, tf.constant(COLOR_CORRELATION_NORMALIZED.T), axes=[[-1], [0]])
        return tf.sigmoid(x)


NAIVE = Param("raw", decorrelate=False)
LUCID = Param("fft", decorrelate=True, decay_power=1.0, sd=0.01)

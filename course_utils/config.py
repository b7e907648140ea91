"""Where the course keeps its data and caches, and whether it may use the network.

Two environment variables steer everything:

``COURSE_DATA_DIR``
    Where datasets and the course's trained models land. Default: the repository's ``data/``
    folder when the package runs from a checkout, else ``~/.cache/what-cnns-see``.
``COURSE_TRAIN_SEED``
    The seed the course's own models are trained with (default 0). Another seed trains, and
    caches, another honest model: the way to check that a lesson's claim holds for any
    training, not only for one (``tools/lesson_margins.py`` runs every lesson under several).
``COURSE_OFFLINE``
    Three modes, read by :func:`offline_mode` (and only there):

    - ``"on"`` (``1``, ``true``, ``yes``, ``on``): never try to download.
      :func:`course_utils.models.load` then raises when a network's pretrained weights are not
      cached, unless the call asks for a ``fallback=`` network (EfficientNet-Lite0, whose
      weights come with a package) or ``standin=True``;
    - ``"auto"`` (unset, empty or ``auto``; what ``make course`` sets): download what is not
      cached; when that fails, the same choices as above apply;
    - ``"off"`` (``0``, ``false``, ``no``, ``off``): online; downloads are tried, as in
      ``"auto"``.

    Any other value is an error that lists these.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Return the folder where datasets and cached models are stored (created on demand).

    Examples
    --------
    >>> from course_utils.config import data_dir
    >>> data_dir().is_dir()
    True
    """
    env = os.environ.get("COURSE_DATA_DIR")
    if env:
        path = Path(env).expanduser()
    elif (_REPO_ROOT / "data" / "manifest.json").is_file():
        path = _REPO_ROOT / "data"
    else:
        path = Path.home() / ".cache" / "what-cnns-see"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(kind: str) -> Path:
    """Return ``data_dir()/cache/<kind>``, created on demand (``kind`` e.g. ``"models"``)."""
    path = data_dir() / "cache" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


#: The values ``COURSE_OFFLINE`` may take (case and surrounding spaces ignored), by mode.
OFFLINE_VALUES: dict[str, tuple[str, ...]] = {
    "auto": ("", "auto"),
    "on": ("1", "true", "yes", "on"),
    "off": ("0", "false", "no", "off"),
}


def offline_mode(value: str | None = None) -> str:
    """``COURSE_OFFLINE`` as one of three modes: ``"auto"``, ``"on"`` or ``"off"``.

    ``"on"`` never downloads; ``"auto"`` (the default) and ``"off"`` download what is not
    cached (see the module's docstring). ``value`` is read instead of the environment when
    given. A value that means none of the modes raises ``ValueError`` naming the valid values,
    rather than being taken for "online".

    Examples
    --------
    >>> offline_mode(" Yes "), offline_mode(""), offline_mode("auto"), offline_mode("0")
    ('on', 'auto', 'auto', 'off')
    >>> offline_mode("sometimes")
    Traceback (most recent call last):
    ...
    ValueError: COURSE_OFFLINE='sometimes' is not valid; use 1, true, yes or on (never ...
    """
    raw = os.environ.get("COURSE_OFFLINE", "") if value is None else value
    key = raw.strip().lower()
    for mode, values in OFFLINE_VALUES.items():
        if key in values:
            return mode
    raise ValueError(
        f"COURSE_OFFLINE={raw!r} is not valid; use 1, true, yes or on (never download), "
        "auto or leave it unset (download what is not cached: the default), or 0, false, no or "
        "off (online)."
    )


def offline() -> bool:
    """True when :func:`offline_mode` is ``"on"``: nothing may be downloaded."""
    return offline_mode() == "on"


def keras_home() -> Path:
    """Keras' own cache folder, where weights and datasets land.

    That is ``KERAS_HOME`` (read by Keras when it is imported) or ``~/.keras``, and
    ``/tmp/.keras`` when that folder is not writable, exactly as ``keras.utils.get_file`` does.
    """
    from keras.src.backend import config as keras_config

    home = Path(keras_config.keras_home()).expanduser()
    return home if os.access(home, os.W_OK) else Path("/tmp") / ".keras"


def train_seed() -> int:
    """The seed of the course's trained models: ``COURSE_TRAIN_SEED``, default 0.

    Examples
    --------
    >>> isinstance(train_seed(), int)
    True
    """
    raw = os.environ.get("COURSE_TRAIN_SEED", "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValueError(
            f"COURSE_TRAIN_SEED must be a whole number, got {raw!r}; unset it for the default 0."
        ) from None


def quick() -> bool:
    """True when ``COURSE_QUICK`` is set: notebooks use fewer steps and samples (CI runs),
    through the same code path."""
    return os.environ.get("COURSE_QUICK", "").strip().lower() in {"1", "true", "yes", "on"}


def onednn_enabled() -> bool | None:
    """Whether TensorFlow runs its oneDNN CPU kernels (``course_utils`` turns them on when it
    is imported before TensorFlow; ``TF_ENABLE_ONEDNN_OPTS=0`` keeps them off; see
    ``course_utils/__init__.py``); None when this TensorFlow does not say. Imports
    TensorFlow.

    Examples
    --------
    >>> onednn_enabled() in (True, False, None)
    True
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())

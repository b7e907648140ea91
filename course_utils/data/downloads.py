"""Downloads that never leave a corrupt file behind: stream to a temporary file, check, move."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from course_utils import cache, config


class DownloadError(RuntimeError):
    """A download failed; nothing was written at the target."""


def download(
    url: str,
    target: str | Path,
    sha256: str | None = None,
    opener: Callable = urllib.request.urlopen,
    chunk: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``target`` with a progress bar, atomically.

    The bytes stream into a temporary file beside ``target``; only a complete download whose
    SHA-256 matches ``sha256`` (when given) is moved into place. A failure midway, or a wrong
    checksum, leaves no file at ``target`` and no temporary file behind.

    Parameters
    ----------
    url
        What to fetch.
    target
        Where the file lands. If it exists already, nothing is downloaded.
    sha256
        Expected hex digest, checked before the file is moved into place.
    opener
        ``urllib.request.urlopen`` or a stand-in with the same interface (for tests).

    Examples
    --------
    A file already at ``target`` is returned as it is, with no network:

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> target = Path(tmp.name, "x.tar.gz")
    >>> _ = target.write_bytes(b"fetched earlier")
    >>> download("https://example.org/x.tar.gz", target) == target
    True
    >>> tmp.cleanup()
    """
    target = Path(target)
    if target.is_file():
        return target
    if config.offline():
        raise DownloadError(
            f"COURSE_OFFLINE is set, so {url} is not downloaded. Fetch it on a machine with "
            f"internet and put it at {target}."
        )
    try:
        with cache.atomic_path(target) as tmp:
            digest = hashlib.sha256()
            with opener(url) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                    while True:
                        block = response.read(chunk)
                        if not block:
                            break
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
            if sha256 is not None and digest.hexdigest() != sha256:
                raise DownloadError(
                    f"Checksum mismatch for {url}: expected {sha256}, got {digest.hexdigest()}. "
                    "Nothing was saved; try again."
                )
    except DownloadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any network or disk failure
        raise DownloadError(
            f"Downloading {url} failed ({type(exc).__name__}: {exc}); nothing was saved at "
            f"{target}. Check the connection and run the command again."
        ) from exc
    return target

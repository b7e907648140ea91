import hashlib
import io

import pytest

from course_utils.data import downloads as dl


class _Response(io.BytesIO):
    def __init__(self, payload, fail_after=None):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}
        self.fail_after = fail_after
        self.sent = 0

    def read(self, n=-1):
        if self.fail_after is not None and self.sent >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        block = super().read(min(n, 1000))
        self.sent += len(block)
        return block


@pytest.fixture(autouse=True)
def online(monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)


def test_download_failing_midway_leaves_no_file(tmp_path):
    target = tmp_path / "food-101.tar.gz"
    payload = b"x" * 10_000
    with pytest.raises(dl.DownloadError, match="nothing was saved"):
        dl.download("http://example.invalid/a", target,
                    opener=lambda url: _Response(payload, fail_after=3000), chunk=1000)
    assert list(tmp_path.iterdir()) == []


def test_download_with_wrong_checksum_leaves_no_file(tmp_path):
    target = tmp_path / "a.zip"
    with pytest.raises(dl.DownloadError, match="Checksum mismatch"):
        dl.download("http://example.invalid/a", target, sha256="0" * 64,
                    opener=lambda url: _Response(b"payload"))
    assert list(tmp_path.iterdir()) == []


def test_download_of_a_real_url_checks_the_checksum(tmp_path):
    source = tmp_path / "src.bin"
    source.write_bytes(b"abc" * 1000)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    out = dl.download(source.as_uri(), tmp_path / "out" / "copy.bin", sha256=digest)
    assert out.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.bin"]


def test_download_refuses_when_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(dl.DownloadError, match="COURSE_OFFLINE"):
        dl.download("http://example.invalid/a", tmp_path / "a")

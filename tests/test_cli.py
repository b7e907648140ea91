import subprocess
import sys

import pytest

from course_utils import __main__ as cli


def test_check_reports_versions_devices_and_caches():
    report = cli.check()
    assert report["keras"].startswith("3.")
    assert set(report["imagenet_weights_cached"]) >= {"vgg16", "xception", "inception_v3",
                                                      "mobilenet_v2"}
    assert isinstance(report["gpus"], list)


def test_fetch_rejects_unknown_names_and_lists_the_valid_ones():
    with pytest.raises(SystemExit) as err:
        cli.fetch(["imagenet21k"])
    assert "vgg16" in str(err.value) and "food101" in str(err.value)


def test_fetch_offline_fails_cleanly_without_leaving_files(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    from course_utils.data import DownloadError

    with pytest.raises(DownloadError, match="COURSE_OFFLINE"):
        cli.fetch(["food101"])
    assert list(tmp_path.iterdir()) == []


def test_module_entry_point_prints_the_report():
    out = subprocess.run([sys.executable, "-m", "course_utils", "check"], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    assert "tensorflow" in out and "imagenet_weights_cached" in out

import json

import numpy as np
import pytest

from course_utils import cache


def test_atomic_path_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "model.keras"
    with pytest.raises(KeyboardInterrupt):
        with cache.atomic_path(target) as tmp:
            tmp.write_bytes(b"half a model")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_until_the_new_one_is_complete(tmp_path):
    target = tmp_path / "a.json"
    cache.atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with cache.atomic_path(target) as tmp:
            tmp.write_text("{broken")
            raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_path_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    with cache.atomic_path(tmp_path / "x.npy") as tmp:
        assert tmp.suffix == ".npy"
        np.save(tmp, np.arange(4))
    assert np.load(tmp_path / "x.npy").tolist() == [0, 1, 2, 3]


def test_key_of_ignores_order_and_sees_every_value():
    a = cache.key_of({"epochs": 3, "lr": 0.001})
    assert a == cache.key_of({"lr": 0.001, "epochs": 3})
    assert a != cache.key_of({"epochs": 4, "lr": 0.001})


def test_cached_file_builds_once(tmp_path):
    calls = []

    def build(tmp):
        calls.append(tmp)
        tmp.write_text("x")

    cache.cached_file(tmp_path / "f.txt", build)
    cache.cached_file(tmp_path / "f.txt", build)
    assert len(calls) == 1 and (tmp_path / "f.txt").read_text() == "x"


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    cache.atomic_write_bytes(tmp_path / "page.html", b"<html></html>")
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "page.html").stat().st_mode)
    assert mode == 0o666 & ~umask

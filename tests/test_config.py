"""``COURSE_OFFLINE`` is read in one place, :func:`course_utils.config.offline_mode`."""

import re
from pathlib import Path

import pytest

import course_utils
from course_utils import config
from course_utils.data import downloads as dl


@pytest.mark.parametrize(("value", "mode"), [
    ("1", "on"), ("true", "on"), (" YES ", "on"), ("On", "on"),
    ("", "auto"), ("auto", "auto"), ("  Auto\n", "auto"),
    ("0", "off"), ("false", "off"), ("no", "off"), ("OFF", "off"),
])
def test_offline_mode_reads_every_documented_spelling(monkeypatch, value, mode):
    monkeypatch.setenv("COURSE_OFFLINE", value)
    assert config.offline_mode() == mode
    assert config.offline_mode(value) == mode
    assert config.offline() is (mode == "on")


def test_unset_is_auto_and_online(monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    assert config.offline_mode() == "auto"
    assert config.offline() is False


@pytest.mark.parametrize("value", ["2", "offline", "maybe", "y", "1 0"])
def test_an_invalid_value_is_an_error_naming_the_valid_ones(monkeypatch, value):
    monkeypatch.setenv("COURSE_OFFLINE", value)
    for call in (config.offline_mode, config.offline):
        with pytest.raises(ValueError) as err:
            call()
        msg = str(err.value)
        assert f"COURSE_OFFLINE={value!r}" in msg
        for valid in ("1", "true", "yes", "on", "auto", "unset", "0", "false", "no", "off"):
            assert valid in msg


def test_every_spelling_belongs_to_one_mode_only():
    spellings = [v for values in config.OFFLINE_VALUES.values() for v in values]
    assert len(spellings) == len(set(spellings))
    assert set(config.OFFLINE_VALUES) == {"auto", "on", "off"}


def test_a_download_with_an_invalid_value_fails_before_touching_the_network(tmp_path,
                                                                            monkeypatch):
    """A typo in COURSE_OFFLINE must not be taken for 'online' (the old reading did)."""
    monkeypatch.setenv("COURSE_OFFLINE", "ture")
    opened = []
    with pytest.raises(ValueError, match="COURSE_OFFLINE='ture' is not valid"):
        dl.download("http://example.invalid/a", tmp_path / "a",
                    opener=lambda url: opened.append(url))
    assert opened == [] and list(tmp_path.iterdir()) == []


def test_only_config_reads_the_variable():
    """Every other module asks config.offline() / offline_mode(): one parser, one error."""
    package = Path(course_utils.__file__).parent
    reads = re.compile(r"""(environ|getenv)\W{1,8}(get\W{1,3})?["']COURSE_OFFLINE""")
    readers = [str(p.relative_to(package)) for p in sorted(package.rglob("*.py"))
               if p.name != "config.py" and reads.search(p.read_text())]
    assert readers == []
    assert reads.search((package / "config.py").read_text())

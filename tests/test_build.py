"""`python -m course_utils build`: one progress line per notebook and the measured cell times."""

from __future__ import annotations

import asyncio
import json

import nbformat
import pytest

from course_utils import build


def _notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a lesson")]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_estimate_uses_reference_cells_scaled_by_this_machines_speed():
    # the reference says 10 + 20 + 30 s; the first cell took 20 s: twice as slow -> 100 s left
    assert build.remaining([10.0, 20.0, 30.0], done=1, elapsed=20.0) == pytest.approx(100.0)
    # a faster machine: 5 s for the first 10 s cell -> half of the 50 s left
    assert build.remaining([10.0, 20.0, 30.0], done=1, elapsed=5.0) == pytest.approx(25.0)
    assert build.remaining([10.0, 20.0, 30.0], done=3, elapsed=60.0) == 0.0


def test_estimate_without_reference_is_the_mean_cell_so_far():
    assert build.remaining(None, done=3, elapsed=30.0, n_cells=5) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="n_cells"):
        build.remaining(None, done=1, elapsed=1.0)


def test_reference_with_another_number_of_cells_is_not_used(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")
    timings = {"quick": {"01_a": [1.0, 2.0]}, "full": {"01_a": [5.0, 6.0, 7.0]}}
    assert build._expected(timings, "01_a", 2) == [1.0, 2.0]
    assert build._expected(timings, "01_a", 3) is None  # the quick record has 2 cells
    monkeypatch.setenv("COURSE_QUICK", "0")
    assert build._expected(timings, "01_a", 3) == [5.0, 6.0, 7.0]


def test_unreadable_timings_fall_back(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "timings.json").write_text("{not json")
    assert build.load_timings(tmp_path) == {}


def test_build_shows_a_line_per_notebook_and_records_cell_times(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_QUICK", "1")
    lessons = tmp_path / "notebooks"
    lessons.mkdir()
    first = _notebook(lessons / "01_a.ipynb", ["x = 1", "import time; time.sleep(0.6)", "x + 1"])
    second = _notebook(lessons / "02_b.ipynb", ["print('hello')"])
    # a reference from an earlier build, for 01_a only: its line has no course total (02_b's
    # time is unknown), 02_b's has (nothing after it)
    (lessons / "timings.json").write_text(json.dumps({"quick": {"01_a": [1.0, 1.0, 1.0]},
                                                      "full": {"02_b": [9.0]}}))
    out = tmp_path / "build"
    measured = build.build(out, [first, second], timeout=120)

    assert set(measured) == {"01_a", "02_b"}
    assert len(measured["01_a"]) == 3 and len(measured["02_b"]) == 1
    assert measured["01_a"][1] >= 0.6  # the sleeping cell
    assert measured["01_a"][2] < 0.6 <= measured["01_a"][1]  # cells timed one by one
    written = json.loads((out / "timings.json").read_text())
    assert written["quick"] == measured
    assert written["full"] == {"02_b": [9.0]}  # the other mode's record is kept
    executed = nbformat.read(out / "notebooks" / "02_b.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "hello\n"
    assert (out / "html" / "01_a.html").is_file()
    err = capsys.readouterr().err
    assert "[ 1/2] 01_a" in err and "[ 2/2] 02_b" in err
    assert "3/3 cells" in err and "elapsed" in err
    first_line = [ln for ln in err.replace("\r", "\n").splitlines() if "01_a" in ln]
    second_line = [ln for ln in err.replace("\r", "\n").splitlines() if "02_b" in ln]
    assert first_line and not any("course ~" in ln for ln in first_line)
    assert any("course ~" in ln for ln in second_line)


def _waits_for(other: str, me: str, wait: float = 60.0) -> str:
    """A cell that says it has started, then waits (up to ``wait`` s) for ``other`` to say so."""
    return (f"import pathlib, time\npathlib.Path('{me}').touch()\nt = time.time()\n"
            f"while not pathlib.Path('{other}').exists() and time.time() - t < {wait}:\n"
            f"    time.sleep(0.05)\nassert pathlib.Path('{other}').exists(), 'ran alone'")


def test_two_kernels_run_two_notebooks_at_once(tmp_path, monkeypatch, capsys):
    # each notebook waits for the other to have started: only kernels running at the same time
    # can both pass; one kernel at a time would fail the first ("ran alone")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_QUICK", "1")
    lessons = tmp_path / "notebooks"
    lessons.mkdir()
    first = _notebook(lessons / "01_a.ipynb", ["x = 1", _waits_for("b_started", "a_started")])
    second = _notebook(lessons / "02_b.ipynb", [_waits_for("a_started", "b_started")])
    third = _notebook(lessons / "03_c.ipynb", ["print('after')"])
    out = tmp_path / "build"
    measured = build.build(out, [first, second, third], timeout=120, jobs=2)

    assert list(measured) == ["01_a", "02_b", "03_c"]  # the course's order, whatever ran first
    assert [len(v) for v in measured.values()] == [2, 1, 1]
    assert json.loads((out / "timings.json").read_text())["quick"] == measured
    for stem in measured:
        assert (out / "html" / f"{stem}.html").is_file()
    err = capsys.readouterr().err
    assert all(f"[ {i}/3] {s}" in err for i, s in ((1, "01_a"), (2, "02_b"), (3, "03_c")))


def test_one_kernel_runs_the_notebooks_one_after_another(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lessons = tmp_path / "notebooks"
    lessons.mkdir()
    first = _notebook(lessons / "01_a.ipynb", [_waits_for("b_started", "a_started", wait=3)])
    second = _notebook(lessons / "02_b.ipynb",
                       ["import pathlib\npathlib.Path('b_started').touch()"])
    with pytest.raises(build.BuildFailed) as info:
        build.build(tmp_path / "build", [first, second], timeout=120, jobs=1)
    assert info.value.failures == {"01_a": "AssertionError: ran alone"}


def test_the_longest_notebook_starts_first_with_two_kernels():
    reference = {"01_a": [10.0], "02_b": [100.0, 50.0], "03_c": [30.0]}
    seconds = build.totals(reference, ["01_a", "02_b", "03_c"])
    assert seconds == {"01_a": 10.0, "02_b": 150.0, "03_c": 30.0}
    assert build.schedule(seconds, jobs=2) == ["02_b", "03_c", "01_a"]
    assert build.schedule(seconds, jobs=1) == ["01_a", "02_b", "03_c"]
    # no record: it may be the longest, so it starts first
    assert build.schedule(build.totals(reference, ["01_a", "04_d"]), jobs=2)[0] == "04_d"


def test_the_course_estimate_shares_the_work_among_kernels():
    course = build._Course({"01_a": 60.0, "02_b": 120.0}, jobs=2)
    assert course.left() == pytest.approx(90.0)  # 180 s of work on two kernels
    course.scale = 2.0  # this machine is twice as slow as the reference
    assert course.left() == pytest.approx(180.0)
    assert build._Course({"01_a": 60.0, "02_b": None}, jobs=2).left() is None


def test_bad_jobs_says_what_is_expected(tmp_path):
    from course_utils.__main__ import main

    with pytest.raises(ValueError, match="jobs must be a whole number of kernels >= 1, got 0"):
        build.build(tmp_path / "build", [], jobs=0)
    with pytest.raises(SystemExit, match="--jobs must be 1 or more"):
        main(["build", "--jobs", "0", "--out", str(tmp_path / "build")])


def test_table_lists_both_modes_and_totals():
    text = build.table({"quick": {"01_a": [60.0], "02_b": [30.0]}, "full": {"01_a": [240.0]}})
    assert "| 01_a | 1.0 | 4.0 |" in text
    assert "| 02_b | 0.5 | - |" in text
    assert "| **all** | **1.5** | **4.0** |" in text


def test_the_line_counts_down_while_a_long_cell_runs(capsys):
    import time

    course = build._Course({}, jobs=1)
    progress = build._Progress("[ 1/1] 01_a", 1, [3.0], course, tick=0.1)
    course.start("01_a", progress)
    time.sleep(1.3)  # no cell has finished: only the ticker redraws the line
    progress.close()
    err = capsys.readouterr().err
    assert "~0:03 left" in err and "~0:02 left" in err


def test_a_failing_lesson_is_reported_after_the_others_ran(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_QUICK", "1")
    lessons = tmp_path / "notebooks"
    lessons.mkdir()
    bad = _notebook(lessons / "01_bad.ipynb", ["x = 1", "raise ValueError('no such layer')",
                                               "print('never')"])
    good = _notebook(lessons / "02_good.ipynb", ["print('hello')"])
    out = tmp_path / "build"
    with pytest.raises(build.BuildFailed) as info:
        build.build(out, [bad, good], timeout=120)

    assert info.value.failures == {"01_bad": "ValueError: no such layer"}
    assert "01_bad: ValueError: no such layer" in str(info.value)
    written = json.loads((out / "timings.json").read_text())
    assert written["quick"] == {"02_good": written["quick"]["02_good"]}  # bad one not recorded
    executed = nbformat.read(out / "notebooks" / "01_bad.ipynb", as_version=4)
    assert executed.cells[2].outputs[0]["ename"] == "ValueError"  # the error, in place
    assert not executed.cells[3].outputs  # nothing after it ran
    assert (out / "html" / "01_bad.html").is_file() and (out / "html" / "02_good.html").is_file()
    later = nbformat.read(out / "notebooks" / "02_good.ipynb", as_version=4)
    assert later.cells[1].outputs[0]["text"] == "hello\n"


def test_the_cli_exits_nonzero_naming_the_failed_lesson(tmp_path, monkeypatch):
    from course_utils.__main__ import main

    monkeypatch.chdir(tmp_path)
    bad = _notebook(tmp_path / "01_bad.ipynb", ["1 / 0"])
    with pytest.raises(SystemExit) as info:
        main(["build", "--out", str(tmp_path / "build"), str(bad)])
    assert "01_bad: ZeroDivisionError" in str(info.value.code)


class _Channel:
    """An asynchronous shell channel whose reply comes only on the n-th poll."""

    def __init__(self, reply_on):
        self.reply_on, self.waits = reply_on, []

    async def get_msg(self, timeout=None):
        self.waits.append(timeout)
        if len(self.waits) < self.reply_on:
            await asyncio.sleep(timeout or 0)  # nothing came in the time waited
            raise build.Empty
        return {"n": len(self.waits)}


def test_polling_in_slices_keeps_the_deadline():
    channel = build.poll_in_slices(_Channel(reply_on=10 ** 9), every=0.02)
    with pytest.raises(build.Empty):
        asyncio.run(channel.get_msg(timeout=0.1))
    assert 3 <= len(channel.waits) <= 6  # about 0.1 / 0.02 slices, then Empty
    assert all(w <= 0.02 for w in channel.waits)
    assert build.poll_in_slices(channel).get_msg is channel.get_msg  # wrapped once only


def test_polling_in_slices_without_a_timeout_waits_for_the_reply():
    channel = build.poll_in_slices(_Channel(reply_on=4), every=0.01)
    assert asyncio.run(channel.get_msg()) == {"n": 4}
    assert channel.waits == [0.01] * 4


def test_the_shipped_reference_covers_every_lesson_cell_by_cell():
    """notebooks/timings.json gives the first build its estimates: one time per code cell of
    every lesson, in both modes (a lesson that gained or lost a cell needs a new record)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    reference = json.loads((root / build.REFERENCE).read_text())
    lessons = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert lessons
    for path in lessons:
        n_cells = sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)
        for m in build.MODES:
            cells = reference[m].get(path.stem)
            assert cells is not None and len(cells) == n_cells, (m, path.stem)
            assert all(isinstance(t, float | int) and t >= 0 for t in cells)

"""The one writer and the escaping helper: special files refused up front, atomic writes."""

import json
import os
import stat

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck.results.result import CheckResult, TensorReport
from gradcheck.results.serialize import (
    OutputPathError,
    check_output_path,
    markdown_text,
    plain,
    write_atomic,
)
from gradcheck.results.session_report import SessionReport


def test_plain_is_json_safe_for_numpy_values():
    value = {"a": np.arange(3), "b": (np.float32(0.5), np.nan), 1: np.int64(2),
             "c": [np.bool_(True), None, float("-inf")]}
    out = plain(value)
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out == {"a": [0, 1, 2], "b": [0.5, None], "1": 2, "c": [True, None, None]}


def test_the_copies_of_plain_are_gone():
    from gradcheck.results import result, session_report
    assert result._plain is plain and session_report._plain is plain


@given(st.text())
def test_markdown_text_is_one_inert_line(text):
    out = markdown_text(text)
    assert "\n" not in out and "\r" not in out
    assert "<" not in out and ">" not in out
    for ch in "|*_`[]#":  # every one escaped
        assert out.count(ch) == out.count("\\" + ch)


def test_to_markdown_escapes_user_names():
    row = TensorReport("<img src=x onerror=alert(1)>", (2,), 1e-12, 1e-10, (0,), 0, 2, 0,
                       True)
    md = CheckResult(ok=True, kind="check_layer", label="<script>x</script>\n# Owned",
                     tensors=[row]).to_markdown()
    assert "<script>" not in md and "<img" not in md
    assert not any(line.startswith("#") for line in md.splitlines())


def test_session_markdown_escapes_test_ids_and_labels(tmp_path):
    report = SessionReport([{"test": "t::a\n# heading | x", "kind": "layer",
                             "label": "<b>L</b>", "ok": False, "diagnosis": ["<i>d</i>"]}])
    text = report.write(tmp_path / "r.md").read_text()
    assert "<b>" not in text and "<i>" not in text
    assert not any(line.startswith("# heading") for line in text.splitlines())
    rows = [line for line in text.splitlines() if line.startswith("| t")]
    assert len(rows) == 1 and rows[0].count(" | ") == 7  # the pipe did not add a column


def _special(kind, tmp_path):
    path = tmp_path / f"special-{kind}"
    if kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link-to-dir":
        (tmp_path / "d").mkdir()
        path.symlink_to(tmp_path / "d")
    elif kind == "dangling":
        path.symlink_to(tmp_path / "nowhere")
    return path


@pytest.mark.parametrize("kind", ["dir", "fifo", "link-to-dir", "dangling"])
def test_special_files_are_refused_before_any_work(tmp_path, kind):
    path = _special(kind, tmp_path)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(OutputPathError):
        check_output_path(path)
    with pytest.raises(OutputPathError):
        write_atomic(path, "x")
    assert sorted(os.listdir(tmp_path)) == before
    if kind == "fifo":
        assert stat.S_ISFIFO(os.stat(path).st_mode)


def test_a_device_is_refused():
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    with pytest.raises(OutputPathError, match="device"):
        write_atomic("/dev/null", "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_missing_folder_is_refused_not_created(tmp_path):
    with pytest.raises(OutputPathError, match="does not exist"):
        write_atomic(tmp_path / "no" / "r.md", "x")
    assert not (tmp_path / "no").exists()


def test_a_symlink_is_followed_and_stays_a_link(tmp_path):
    real = tmp_path / "real.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    assert write_atomic(link, "new") == real
    assert link.is_symlink() and real.read_text() == "new"


def test_mode_respects_the_umask_and_content_is_complete(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_atomic(tmp_path / "r.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert path.read_text() == "{}"


@pytest.mark.parametrize("where", ["chmod", "fsync", "replace"])
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_every_failure_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, where,
                                                             error):
    target = tmp_path / "r.md"
    target.write_text("old")

    def fail(*args, **kwargs):
        raise error
    monkeypatch.setattr(os, where, fail)
    with pytest.raises(type(error)):
        write_atomic(target, "new" * 1000)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["r.md"]
    assert target.read_text() == "old"


def test_dash_is_standard_output(capsys):
    assert write_atomic("-", "hello\n") is None
    assert capsys.readouterr().out == "hello\n"

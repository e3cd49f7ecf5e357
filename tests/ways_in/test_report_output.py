"""``gradcheck report -o``: special files refused before any work, through the one writer."""

from __future__ import annotations

import os
import stat

import pytest

from gradcheck.reference import report_cli
from gradcheck.ways_in.cli import main


def _never(*args, **kwargs):
    raise AssertionError("the report was built although the output path is refused")


@pytest.mark.parametrize("kind", ["directory", "fifo", "missing folder", "device"])
def test_special_outputs_are_refused_before_the_report_is_built(tmp_path, monkeypatch,
                                                                capsys, kind):
    path = {"directory": tmp_path / "d.md", "fifo": tmp_path / "p.md",
            "missing folder": tmp_path / "no" / "r.md", "device": "/dev/null"}[kind]
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device" and not os.path.exists(path):
        pytest.skip("no /dev/null")
    monkeypatch.setattr(report_cli, "build_report", _never)
    assert main(["report", "-o", str(path), "--format", "md"]) == 2  # bad usage
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "could not write" in err
    if kind == "fifo":
        assert stat.S_ISFIFO(os.stat(path).st_mode)
    if kind == "device":
        assert stat.S_ISCHR(os.stat(path).st_mode)


def test_dash_writes_to_standard_output(capsys):
    assert main(["report", "-o", "-", "--only", "tanh", "--network", "none",
                 "--no-plots"]) == 0
    assert "tanh" in capsys.readouterr().out


def test_the_written_report_respects_the_umask(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert main(["report", "-o", str(tmp_path / "r.md"), "--only", "tanh", "--network",
                     "none", "--no-plots"]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "r.md").st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["r.md"]

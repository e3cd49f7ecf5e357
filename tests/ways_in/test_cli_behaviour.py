"""The CLI on a terminal and under bad usage: 80 columns, Ctrl-C, NO_COLOR, seeds, --only."""

from __future__ import annotations

import io
import json
import re
import textwrap

import numpy as np
import pytest

from gradcheck.ways_in import cli, console
from gradcheck.zoo import verify

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

LAYER = textwrap.dedent('''
    import numpy as np

    class Lin:
        def __init__(self):
            self.params = {"W": np.random.default_rng(0).standard_normal((4, 3))}
            self.grads = {"W": np.zeros((4, 3))}

        def forward(self, x):
            self.x = x
            return x @ self.params["W"]

        def backward(self, g):
            self.grads["W"][...] = self.x.T @ g
            return g @ self.params["W"].T
''')


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def layer_file(tmp_path):
    path = tmp_path / "lin.py"
    path.write_text(LAYER)
    return f"{path}:Lin"


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("argv", [["verify", "--seed", "-1", "--only", "relu"],
                                  ["verify", "--seed", "x"],
                                  ["check", "a.py:A", "--seed", "-3"],
                                  ["check", "a.py:A", "--rtol", "-1"],
                                  ["check", "a.py:A", "--eps", "nan"]])
def test_bad_numbers_are_usage_errors_with_exit_2(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == "" and "Traceback" not in err


def test_verify_library_refuses_a_negative_seed_up_front():
    with pytest.raises(ValueError, match=">= 0"):
        verify.verify(only=["relu"], seed=-1)
    with pytest.raises(ValueError, match=">= 0"):
        verify.run_case(verify.cases(["relu"])[0], seed=-1)


@pytest.mark.parametrize("only", [",,,", " , ", ","])
def test_only_without_names_is_an_error(capsys, only):
    status, out, err = run(capsys, "verify", "--only", only)
    assert status == 2 and out == "" and "--only" in err
    with pytest.raises(ValueError):
        verify.cases(only.split(","))


def test_ctrl_c_prints_one_line_and_exits_130(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(verify, "run_case", interrupted)
    status, _, err = run(capsys, "verify", "--only", "relu")
    assert status == cli.EXIT_INTERRUPTED == 130
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_ctrl_c_in_check_exits_130(capsys, monkeypatch, layer_file):
    import gradcheck

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(gradcheck, "check_layer", interrupted)
    status, _, err = run(capsys, "check", layer_file, "--input-shape", "5,4")
    assert status == 130 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("no_color", "tty", "bar"), [("1", True, False), ("", False, False),
                                                      ("", True, True)])
def test_progress_bar_only_on_a_terminal_without_no_color(monkeypatch, no_color, tty, bar):
    monkeypatch.setenv("NO_COLOR", no_color) if no_color else monkeypatch.delenv(
        "NO_COLOR", raising=False)
    stream = Terminal() if tty else io.StringIO()
    assert list(console.progress([1, 2, 3], description="x", stream=stream)) == [1, 2, 3]
    assert bool(stream.getvalue()) == bar


def _on_a_terminal(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.delenv("NO_COLOR", raising=False)
    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    return screen


def _lines(screen):
    return [ANSI.sub("", line) for line in screen.getvalue().splitlines()]


def test_verify_fits_80_columns_with_its_verdict(monkeypatch):
    screen = _on_a_terminal(monkeypatch, 80)
    rows = [verify.VerifyRow(name=name, kind=kind, ok=ok, ways="", exact_error=1e-16,
                             numeric_error=3e-11, error_ratio=1e-3, checked=12345,
                             nondifferentiable=12, evaluations=123456, mode="full",
                             seconds=0.1, note="" if ok else "a sign flip in dW " * 8)
            for name, kind, ok in [("relu", "activation", True),
                                   ("BatchNorm-net", "network", False),
                                   ("softmax_ce", "loss", True)]]
    monkeypatch.setattr(verify, "run_case", lambda case, **_: rows.pop(0))
    monkeypatch.setattr(verify, "cases", lambda only: ["a", "b", "c"])
    assert cli.main(["verify"]) == 1
    lines = _lines(screen)
    assert max(len(line) for line in lines) <= 80
    table = [line for line in lines if line.startswith(("relu", "BatchNorm", "softmax"))]
    assert [line.split()[-1] for line in table] == ["ok", "[1]", "ok"]
    assert "FAILED [1]" in table[1]
    assert any(line.startswith("[1] BatchNorm-net: a sign flip") for line in lines)


def test_check_fits_80_columns_and_keeps_ok_whole(monkeypatch, layer_file):
    screen = _on_a_terminal(monkeypatch, 80)
    assert cli.main(["check", layer_file, "--input-shape", "1024,4"]) == 0
    lines = _lines(screen)
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if line.startswith(("x ", "W "))]
    assert len(rows) == 2 and all(line.rstrip().endswith("yes") for line in rows)


def test_check_json_has_one_block_per_check(capsys, layer_file):
    status, out, _ = run(capsys, "check", layer_file, "--input-shape", "5,4", "--json")
    report = json.loads(out)
    assert status == 0 and "result" not in report
    block = report["check"]
    for key in ("ok", "kind", "label", "tensors", "worst", "options", "notes",
                "max_rel_error", "n_checked"):
        assert key in block
    assert all("worst_index" in t for t in block["tensors"])


class Named:
    """A layer whose parameter name holds rich markup and an escape sequence."""

    NAME = "[bold]w[/]\x1b[2J\nrow"

    def __init__(self):
        self.params = {self.NAME: np.ones(3)}
        self.grads = {self.NAME: np.zeros(3)}

    def forward(self, x):
        self.x = x
        return x * self.params[self.NAME]

    def backward(self, g):
        self.grads[self.NAME][...] = np.sum(g * self.x, axis=0)
        return g * self.params[self.NAME]


@pytest.mark.parametrize("tty", [True, False])
def test_user_names_cannot_inject_markup_or_escape_codes(monkeypatch, tty):
    import gradcheck
    result = gradcheck.check_layer(Named(), np.ones((2, 3)))
    screen = _on_a_terminal(monkeypatch, 80) if tty else io.StringIO()
    console.print_result(result, stream=screen)
    text = screen.getvalue()
    assert "\x1b[2J" not in text and "[bold]w[/]" in ANSI.sub("", text)
    assert not any(line.startswith("row") for line in text.splitlines())

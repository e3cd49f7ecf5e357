"""Console output: rich on a terminal, plain text in pipes and under NO_COLOR."""

from __future__ import annotations

import io

import pytest

from gradcheck.ways_in import console


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


ROWS = [["relu", "ok"], ["broken_layer", "FAILED"]]


def test_plain_table_in_a_pipe_marks_failed_rows():
    out = io.StringIO()
    console.print_table(["name", "verdict"], ROWS, stream=out, failed=[False, True])
    assert out.getvalue().splitlines() == [
        "  name          verdict",
        "  ------------  -------",
        "  relu          ok",
        "! broken_layer  FAILED",
    ]


def test_a_terminal_gets_a_rich_table(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = FakeTerminal()
    console.print_table(["name", "verdict"], ROWS, stream=out, failed=[False, True])
    text = out.getvalue()
    assert console.is_rich(out)
    assert "\x1b[" in text and "broken_layer" in text  # colour codes and box drawing
    assert "─" in text or "━" in text  # a rule under the header


def test_no_color_makes_a_terminal_plain(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out = FakeTerminal()
    console.print_table(["name", "verdict"], ROWS, stream=out)
    assert not console.is_rich(out)
    assert "\x1b[" not in out.getvalue()


@pytest.mark.parametrize("stream", [io.StringIO(), FakeTerminal()])
def test_progress_yields_every_item_in_order(stream):
    assert list(console.progress(["a", "b", "c"], description="x", stream=stream)) == \
        ["a", "b", "c"]
    if not isinstance(stream, FakeTerminal):
        assert stream.getvalue() == ""  # nothing drawn outside a terminal

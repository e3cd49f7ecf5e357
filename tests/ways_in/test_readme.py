"""The README's examples run as written: scripts, test files, and shell commands.

Python blocks starting with ``# file: NAME`` are written to NAME; test files among them run
through pytest (with the plugin), the other Python blocks are executed in order, and every
``gradcheck ...`` line of a bash block runs through ``gradcheck.ways_in.cli.main`` with the exit
status its comment states (0 when none).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gradcheck.ways_in.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
FILE = re.compile(r"# file: (\S+)\n")
STATUS = re.compile(r"#.*exit status (\d)")


def blocks() -> list[tuple[str, str]]:
    found = BLOCK.findall(README.read_text())
    assert found[0][0] == "bash" and "gradcheck verify" in found[0][1]  # the top commands
    return found[1:]


def test_the_readme_examples_run(pytester: pytest.Pytester, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(pytester.path))
    files, scripts, commands = [], [], []
    for language, code in blocks():
        named = FILE.match(code)
        if language == "python" and named:
            (pytester.path / named.group(1)).write_text(code)
            files.append(named.group(1))
        elif language == "python":
            scripts.append(code)
        elif language == "bash":
            commands += [line for line in code.splitlines() if line.startswith("gradcheck ")]
    assert {"my_layers.py", "test_my_layers.py", "test_networks.py"} <= set(files)
    assert scripts and commands

    for code in scripts:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})

    tests = [name for name in files if name.startswith("test_")]
    result = pytester.runpytest(*tests)
    result.assert_outcomes(passed=4)

    monkeypatch.chdir(pytester.path)
    for line in commands:
        expected = STATUS.search(line)
        argv = shlex.split(line, comments=True)[1:]
        assert main(argv) == (int(expected.group(1)) if expected else 0), line
    capsys.readouterr()
    assert "tanh" in (pytester.path / "derivations.md").read_text()

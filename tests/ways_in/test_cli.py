"""The ``gradcheck`` command line, in process through ``main([...])`` and one subprocess."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import textwrap
import types

import pytest

from gradcheck import __version__
from gradcheck.models.activations import ACTIVATIONS, VECTOR_ACTIVATIONS
from gradcheck.models.losses import LOSSES
from gradcheck.ways_in.cli import JSON_SCHEMA_VERSION, main
from gradcheck.zoo import verify
from gradcheck.zoo.verify import EXACT_TOLERANCE
from tests.support.layer_files import AFFINE_SOURCE

# the documented, stable JSON schema (cli docstring): written out, not read from the code
ROW_KEYS = {"name", "kind", "ok", "ways", "exact_error", "numeric_error", "error_ratio",
            "checked", "nondifferentiable", "evaluations", "mode", "seconds", "note"}

LAYER_FILE = AFFINE_SOURCE + textwrap.dedent('''
    class WithExample(Affine):
        @classmethod
        def gradcheck_example(cls):
            return cls(4, 3), np.linspace(-1, 1, 20).reshape(5, 4)

    class Transposed(Affine):
        def backward(self, grad_out):
            super().backward(grad_out)
            self.grads["W"][...] = self.grads["W"][::-1]
            return grad_out @ self.params["W"].T

    class NeedsArguments(Affine):
        def __init__(self, width):
            super().__init__()

    class Raises(WithExample):
        def forward(self, x):
            raise ValueError("boom in forward")

    class NotALayer:
        def forward(self, x):
            return x

    helper = 3
''')


@pytest.fixture
def layers(tmp_path):
    path = tmp_path / "my_layers.py"
    path.write_text(LAYER_FILE)
    return path


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert (status, out.strip()) == (0, f"gradcheck {__version__}")


# ---- verify --------------------------------------------------------------------------

def test_verify_json_holds_activations_and_losses_three_ways(capsys):
    status, out, _ = run(capsys, "verify", "--only", "relu,tanh", "--only", "mse", "--json")
    report = json.loads(out)
    assert status == 0 and report["ok"] is True
    assert set(report) == {"schema", "command", "ok", "fast", "seed", "seconds", "rows"}
    assert (report["schema"], report["command"]) == (JSON_SCHEMA_VERSION, "verify")
    assert [r["name"] for r in report["rows"]] == ["tanh", "relu", "mse"]  # table order
    for row in report["rows"]:
        assert set(row) == ROW_KEYS
        assert row["ways"] == "exact = analytic = numeric"
        assert row["exact_error"] <= EXACT_TOLERANCE and row["checked"] > 0


def test_verify_table_covers_layers_and_networks(capsys):
    status, out, _ = run(capsys, "verify", "--fast", "--only", "LSTM,Dropout-frozen,MLP-L2,CNN")
    assert status == 0
    for name in ("LSTM", "Dropout-frozen", "MLP-L2", "CNN"):
        assert name in out
    assert "4 of 4 agree" in out
    assert "\x1b[" not in out  # not a terminal: plain text


@pytest.mark.parametrize(("table", "name", "field"), [
    (ACTIVATIONS, "softplus", "df"), (VECTOR_ACTIVATIONS, "softmax", "vjp"),
    (LOSSES, "huber", "grad")])
def test_verify_fails_on_a_planted_bug(capsys, monkeypatch, table, name, field):
    row = table[name]
    right = getattr(row, field)
    wrong = dataclasses.replace(row, **{field: lambda *args: 1.01 * right(*args)})
    monkeypatch.setitem(table, name, wrong)
    status, out, _ = run(capsys, "verify", "--only", name, "--json")
    (result,) = json.loads(out)["rows"]
    assert status == 1 and result["ok"] is False
    assert result["exact_error"] > EXACT_TOLERANCE
    assert "analytic and exact derivatives differ" in result["note"]


def test_verify_fails_when_a_layer_backward_is_wrong(capsys, monkeypatch):
    from gradcheck.models.conv import Conv2D
    backward = Conv2D.backward

    def sign_flipped_bias(self, grad_out):
        dx = backward(self, grad_out)
        self.grads["b"] *= -1
        return dx

    monkeypatch.setattr(Conv2D, "backward", sign_flipped_bias)
    status, out, _ = run(capsys, "verify", "--only", "Conv2D,CNN,Dense", "--json")
    rows = {row["name"]: row for row in json.loads(out)["rows"]}
    assert status == 1
    assert (rows["Conv2D"]["ok"], rows["CNN"]["ok"], rows["Dense"]["ok"]) == (False, False, True)
    assert rows["Conv2D"]["note"]


def test_verify_covers_every_table_row_and_every_required_network():
    names = [case.name for case in verify.cases()]
    assert len({n.lower() for n in names}) == len(names)
    assert {*ACTIVATIONS, *VECTOR_ACTIVATIONS, *LOSSES} <= set(names)
    assert {"MLP", "MLP-L2", "CNN", "RNN-net", "LSTM-net", "BatchNorm-net", "Dropout-net",
            "Dropout-frozen", "BatchNorm", "BatchNorm-NCHW", "BatchNorm-eval", "Conv2D", "RNN",
            "LSTM"} <= set(names)


def test_verify_only_accepts_kinds(capsys):
    status, out, _ = run(capsys, "verify", "--only", "loss", "--json")
    rows = json.loads(out)["rows"]
    assert status == 0 and [r["name"] for r in rows] == list(LOSSES)
    assert {r["kind"] for r in rows} == {"loss"}


def test_verify_rejects_unknown_names(capsys):
    status, _, err = run(capsys, "verify", "--only", "relu,swish9")
    assert status == 2
    assert err.startswith("gradcheck verify: error: --only: unknown names swish9; known: ")
    assert len(err.strip().splitlines()) == 1


# ---- check ---------------------------------------------------------------------------

def test_check_a_correct_layer_from_its_example(capsys, layers):
    status, out, _ = run(capsys, "check", f"{layers}:WithExample")
    assert status == 0
    assert out.startswith("check_layer(WithExample): OK")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:5]}
    assert rows["x"][1:3] == ["(5,", "4)"] and rows["W"][1:3] == ["(4,", "3)"]
    assert rows["b"][1] == "(3,)" and all(row[-1] == "yes" for row in rows.values())


def test_check_a_wrong_layer_exits_1_and_names_the_tensor(capsys, layers):
    status, out, _ = run(capsys, "check", f"{layers}:Transposed", "--input-shape", "5,3",
                         "--json")
    report = json.loads(out)
    assert status == 1 and report["ok"] is False
    assert set(report) == {"schema", "command", "target", "ok", "input_shape", "dtype", "seed",
                           "check"}  # one block per check
    assert (report["input_shape"], report["dtype"]) == ([5, 3], "float64")
    bad = {t["name"] for t in report["check"]["tensors"] if not t["ok"]}
    assert bad == {"W"}


def test_check_passes_explicit_tolerances_and_step_to_the_checker(capsys, layers):
    # defaults come from the error estimate; explicit values reach the checker and echo
    status, out, _ = run(capsys, "check", f"{layers}:Affine", "--input-shape", "5,3",
                         "--json")
    assert status == 0
    options = json.loads(out)["check"]["options"]
    assert options["eps"] > 0 and options["rtol"] < 1e-3
    status, out, _ = run(capsys, "check", f"{layers}:Affine", "--input-shape", "5,3",
                         "--rtol", "0.05", "--atol", "1e-9", "--eps", "1e-5", "--json")
    options = json.loads(out)["check"]["options"]
    assert status == 0
    assert (options["rtol"], options["atol"], options["eps"]) == (0.05, 1e-9, 1e-5)


def test_check_with_input_shape_and_float32(capsys, layers):
    status, out, _ = run(capsys, "check", f"{layers}:Affine", "--input-shape", "6,3",
                         "--dtype", "float32", "--seed", "4", "--mode", "full", "--json")
    report = json.loads(out)
    assert status == 0 and report["dtype"] == "float32" and report["seed"] == 4
    assert report["check"]["mode"] == "full"


@pytest.mark.parametrize(("target", "extra", "message"), [
    ("missing.py:Affine", [], "no such file: "),
    ("{layers}", [], "expected path/to/file.py:ClassName"),
    ("{layers}:Nope", [], "has no class 'Nope'; classes defined there: Affine, NeedsArguments"),
    ("{layers}:helper", [], "'helper' in "),
    ("{layers}:NotALayer", ["--input-shape", "2,3"], "NotALayer is not a layer: it has no "
                                                     "backward method"),
    ("{layers}:Affine", [], "Affine has no gradcheck_example(): pass --input-shape"),
    ("{layers}:NeedsArguments", ["--input-shape", "2,3"], "cannot build NeedsArguments()"),
    ("{layers}:Affine", ["--input-shape", "4,a"], "--input-shape '4,a' is not a shape"),
    ("{layers}:Affine", ["--input-shape", "0,3"], "--input-shape '0,3' is not a shape"),
    ("{layers}:Affine", ["--input-shape", "4,5"], "Affine at input shape (4, 5): "),
    ("{layers}:Raises", [], "boom in forward"),
])
def test_check_bad_usage_exits_2_with_one_line(capsys, layers, target, extra, message):
    status, out, err = run(capsys, "check", target.format(layers=layers), *extra)
    assert status == 2 and out == ""
    assert err.startswith("gradcheck check: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err



def test_check_a_dataclass_layer_with_postponed_annotations(capsys, tmp_path):
    # dataclasses resolve string annotations through sys.modules[cls.__module__]
    path = tmp_path / "dc_layer.py"
    path.write_text(textwrap.dedent('''
        from __future__ import annotations
        from dataclasses import dataclass, field
        import numpy as np

        @dataclass
        class Scale:
            params: dict = field(default_factory=lambda: {"w": np.arange(1.0, 4.0)})
            grads: dict = field(default_factory=lambda: {"w": np.zeros(3)})
            x: np.ndarray | None = None

            def forward(self, x):
                self.x = x
                return x * self.params["w"]

            def backward(self, grad_out):
                self.grads["w"][...] = (grad_out * self.x).sum(axis=0)
                return grad_out * self.params["w"]
    '''))
    status, out, err = run(capsys, "check", f"{path}:Scale", "--input-shape", "2,3")
    assert (status, err) == (0, "")
    assert out.startswith("check_layer(Scale): OK")

def test_check_a_file_that_does_not_import(capsys, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy as np\nclass A(:\n")
    status, _, err = run(capsys, "check", f"{broken}:A")
    assert status == 2 and "could not import" in err and "SyntaxError" in err


# ---- report and the process entry points -------------------------------------------------

def test_report_passes_its_arguments_to_the_reference_cli(capsys, monkeypatch):
    seen = []
    fake = types.ModuleType("gradcheck.reference.report_cli")
    fake.main = lambda argv: seen.append(argv) or 3
    monkeypatch.setitem(sys.modules, "gradcheck.reference.report_cli", fake)
    assert main(["report", "-o", "out.html", "--only", "relu"]) == 3
    assert seen == [["-o", "out.html", "--only", "relu"]]


def test_report_runs_the_derivation_report(capsys, tmp_path):
    out = tmp_path / "relu.md"
    assert main(["report", "--only", "relu", "--network", "none", "--no-plots",
                 "-o", str(out)]) == 0
    assert "relu" in out.read_text()
    assert main(["report", "--format", "pdf"]) == 2  # its own usage errors keep status 2
    assert "--format" in capsys.readouterr().err


def test_python_dash_m_runs_verify_in_a_subprocess():
    done = subprocess.run([sys.executable, "-m", "gradcheck", "verify", "--only", "sigmoid",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"][0]["name"] == "sigmoid"


def test_a_closed_pipe_ends_verify_quietly(monkeypatch):
    class ClosedPipe(io.StringIO):  # `gradcheck verify | head` after head has exited
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["verify", "--only", "sigmoid"]) == 0


class _Terminal(io.StringIO):
    """A standard error that says it is a terminal (the progress line is shown there)."""

    def isatty(self):
        return True


@pytest.mark.parametrize("flags", [[], ["-q"], ["--quiet"]])
def test_report_q_is_the_short_spelling_of_quiet(monkeypatch, tmp_path, flags):
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    out = tmp_path / "relu.md"
    assert main(["report", *flags, "--only", "relu", "--network", "none", "--no-plots",
                 "-o", str(out)]) == 0
    assert "relu" in out.read_text()
    progress = "\x1b[2K[" in err.getvalue()  # the progress line rewrites itself in place
    assert progress != bool(flags), err.getvalue()

"""Bad inputs found by fuzzing: each a clear error (or accepted), none a deep NumPy failure.

File-backed parameters, seeds, NumPy scalars and bools as options, complex values where
real ones are meant, masked arrays, ``np.matrix``, a class instead of an instance, and
exceptions in the probe calls (MemoryError, RecursionError, garbage at the point).
"""

from __future__ import annotations

import mmap

import numpy as np
import pytest

import gradcheck
from gradcheck import CheckInputError, CheckTypeError, NonFiniteError, UserCodeError
from gradcheck.engine.options import OPTION_NAMES, Options
from gradcheck.engine.safety import file_backed
from support.toy_layers import Affine

X = np.random.default_rng(0).standard_normal((3, 4))


def _sq(x):
    return float(np.sum(x ** 2))


def _dsq(x):
    return 2 * x


# ---- file-backed parameters ---------------------------------------------------------

def _memmap_layer(tmp_path, how):
    layer = Affine(4, 2)
    path = tmp_path / "W.bin"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=layer.params["W"].shape)
    mm[...] = layer.params["W"]
    mm.flush()
    if how == "memmap":
        layer.params["W"] = mm
    elif how == "view":
        layer.params["W"] = np.asarray(mm)[...]  # a plain ndarray whose base is the memmap
    else:  # an ndarray over a raw mmap
        with open(path, "r+b") as handle:  # the mapping outlives the file object
            raw = mmap.mmap(handle.fileno(), 0)
        layer.params["W"] = np.frombuffer(raw, dtype=np.float64).reshape(4, 2)
    return layer, path


@pytest.mark.parametrize("how", ["memmap", "view", "mmap"])
def test_file_backed_parameters_are_refused_and_the_file_untouched(tmp_path, how):
    layer, path = _memmap_layer(tmp_path, how)
    before = path.read_bytes()
    assert file_backed(layer.params["W"])
    with pytest.raises(CheckInputError, match=r"params\['W'\].*file") as info:
        gradcheck.check_layer(layer, X)
    assert "copy" in str(info.value)
    assert path.read_bytes() == before


def test_in_memory_arrays_are_not_file_backed():
    assert not file_backed(np.ones(3)) and not file_backed(np.ones((3, 3))[1:])
    assert not file_backed(np.frombuffer(bytearray(16)))


def test_a_memmap_input_is_checked_through_a_copy(tmp_path):
    mm = np.memmap(tmp_path / "x.bin", dtype=np.float64, mode="w+", shape=(5,))
    mm[...] = np.arange(5.0)
    mm.flush()
    before = (tmp_path / "x.bin").read_bytes()
    assert gradcheck.check_grad(_sq, _dsq, mm).ok
    assert (tmp_path / "x.bin").read_bytes() == before


# ---- options --------------------------------------------------------------------------

@pytest.mark.parametrize("opts", [{"eps": np.float32(1e-4)}, {"rtol": np.int64(0)},
                                  {"atol": np.float64(1e-8)}, {"seed": np.int64(3)},
                                  {"seed": np.uint8(2)}, {"directions": np.int32(4)}])
def test_numpy_scalars_are_accepted_where_numbers_are(opts):
    assert gradcheck.check_grad(_sq, _dsq, np.arange(3.0), **opts).ok


@pytest.mark.parametrize("opts", [{"rtol": True}, {"atol": np.bool_(False)}, {"eps": False},
                                  {"seed": True}, {"directions": True}, {"rtol": "1e-3"},
                                  {"seed": 1.0}, {"eps": 1 + 0j}])
def test_bools_and_non_numbers_are_refused(opts):
    with pytest.raises(CheckTypeError, match=next(iter(opts))):
        gradcheck.check_grad(_sq, _dsq, np.arange(3.0), **opts)


@pytest.mark.parametrize("seed", [-1, np.int64(-5), -(2 ** 70)])
def test_a_negative_seed_is_a_clear_error(seed):
    with pytest.raises(CheckInputError, match=r"seed=.*>= 0"):
        gradcheck.check_layer(Affine(4, 2), X, seed=seed)


def test_validated_options_hold_python_numbers():
    out = Options.of("check_grad", {"eps": np.float32(0.5), "rtol": np.int64(0),
                                    "seed": np.int8(1), "allow_unresolved": np.bool_(True)})
    assert (out.eps, out.rtol, out.seed, out.allow_unresolved) == (0.5, 0.0, 1, True)
    assert [type(v) for v in (out.eps, out.rtol, out.seed, out.allow_unresolved)] == [
        float, float, int, bool]


@pytest.mark.parametrize("check", ["check_grad", "check_jacobian", "check_hvp", "check_layer",
                                   "check_model", "check_function", "check_pair",
                                   "check_loss", "check_object"])
def test_an_unknown_option_is_named_with_the_options_there_are(check):
    from gradcheck.engine.errors import CheckInputError as Err
    args = {"check_grad": (_sq, _dsq, np.ones(2)), "check_jacobian": (np.sin, np.ones(2)),
            "check_hvp": (_dsq, lambda x, w: 2 * w, np.ones(2)),
            "check_layer": (Affine(4, 2), X), "check_model": (None, None, X, X),
            "check_function": (np.sin, np.ones(2)), "check_pair": (None, None, X),
            "check_loss": (lambda: 0.0, None, {"w": np.ones(2)}),
            "check_object": (Affine(4, 2), X)}[check]
    with pytest.raises(Err) as raised:
        getattr(gradcheck, check)(*args, rtl=1e-3)
    assert "rtl" in str(raised.value) and all(name in str(raised.value) for name in OPTION_NAMES)


# ---- complex, masked, matrix ------------------------------------------------------------

def test_a_complex_value_of_f_is_refused_not_truncated():
    with pytest.raises(CheckTypeError, match="imaginary"):
        gradcheck.check_grad(lambda x: complex(np.sum(x ** 2), 1.0), _dsq, np.ones(3))


def test_a_complex_gradient_is_refused_not_truncated():
    with pytest.raises(CheckTypeError, match="imaginary"):
        gradcheck.check_grad(_sq, lambda x: 2 * x + 1j, np.ones(3))


def test_a_complex_output_of_a_jacobian_function_is_refused():
    with pytest.raises(CheckTypeError, match="imaginary"):
        gradcheck.check_jacobian(lambda x: x * (1 + 1j), np.ones(3), jac=lambda x: np.eye(3))


def test_complex_values_with_zero_imaginary_part_are_fine():
    assert gradcheck.check_grad(lambda x: complex(np.sum(x ** 2)), lambda x: 2 * x + 0j,
                                np.ones(3)).ok


def test_complex_step_still_works():
    assert gradcheck.check_grad(lambda x: np.sum(x ** 3), lambda x: 3 * x ** 2,
                                np.arange(1.0, 4.0), method="complex").ok


def test_a_masked_input_is_refused():
    x = np.ma.masked_array(np.arange(3.0), mask=[0, 1, 0])
    with pytest.raises(CheckTypeError, match="masked"):
        gradcheck.check_grad(_sq, _dsq, x)


def test_a_masked_gradient_is_refused():
    with pytest.raises(CheckTypeError, match="masked"):
        gradcheck.check_grad(_sq, lambda x: np.ma.masked_array(2 * x, mask=[1, 0, 0]),
                             np.arange(3.0))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_matrix_input_and_parameters_are_refused_clearly():
    with pytest.raises(CheckTypeError, match=r"np\.matrix"):
        gradcheck.check_grad(_sq, _dsq, np.matrix([[1.0, 2.0]]))
    layer = Affine(4, 2)
    layer.params["W"] = np.matrix(layer.params["W"])
    with pytest.raises(CheckTypeError, match=r"params\['W'\].*np\.matrix"):
        gradcheck.check_layer(layer, X)


# ---- a class instead of an instance; no pointers to files that are not installed ----------

def test_a_class_instead_of_an_instance_says_so():
    with pytest.raises(CheckTypeError, match="class Affine, not an instance"):
        gradcheck.check_layer(Affine, X)
    with pytest.raises(CheckTypeError, match="not an instance"):
        gradcheck.check_model(Affine, object(), X, np.ones(2))


def test_errors_never_point_to_docs_that_are_not_installed():
    class NoBackward:
        params, grads = {"0.w": np.ones(1)}, {}

        def forward(self, x):
            return x
    with pytest.raises(CheckTypeError) as info:
        gradcheck.check_model(NoBackward(), NoBackward(), X, X)
    assert "ARCHITECTURE" not in str(info.value) and ".md" not in str(info.value)


# ---- the probe calls -------------------------------------------------------------------

class Probed(Affine):
    """An Affine whose forward raises ``error`` (or returns ``garbage``) on call ``at``.

    ``hit_x`` records whether that call was at the point to check (an input equal to X).
    """

    def __init__(self, at, error=None, garbage=None):
        super().__init__(4, 2)
        self.calls, self.at, self.error, self.garbage = 0, at, error, garbage
        self.hit_x = None

    def forward(self, x):
        self.calls += 1
        if self.calls == self.at:
            self.hit_x = bool(np.array_equal(x, X))
            if self.error is not None:
                raise self.error
            return self.garbage
        return super().forward(x)


@pytest.mark.parametrize("error", [MemoryError("out of memory"), RecursionError("deep")])
@pytest.mark.parametrize("at", range(1, 12))  # every probe and the first differences
def test_memory_and_recursion_errors_in_any_call_reach_the_user(error, at):
    with pytest.raises(UserCodeError) as info:
        gradcheck.check_layer(Probed(at, error=error), X)
    assert isinstance(info.value.__cause__, type(error))


@pytest.mark.parametrize("at", range(1, 12))
def test_keyboard_interrupt_in_any_call_is_not_swallowed(at):
    layer = Probed(at, error=KeyboardInterrupt())
    saved = [p.copy() for p in layer.params.values()]
    with pytest.raises(KeyboardInterrupt):
        gradcheck.check_layer(layer, X)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(saved, layer.params.values(), strict=True))


def test_a_domain_error_on_the_shifted_input_is_skipped():
    layer = Probed(1, error=ValueError("outside the domain"))
    result = gradcheck.check_layer(layer, X)
    assert result.ok and layer.hit_x is False


@pytest.mark.parametrize("garbage", [None, "text", (1.0, 2.0)])
@pytest.mark.parametrize("at", range(1, 12))
def test_wrong_types_in_any_call_are_reported(garbage, at):
    with pytest.raises((CheckTypeError, CheckInputError, UserCodeError)):
        gradcheck.check_layer(Probed(at, garbage=garbage), X)


@pytest.mark.parametrize("at", range(1, 11))  # the probes, before the differences start
def test_nan_at_the_point_is_reported_in_every_probe(at):
    layer = Probed(at, garbage=np.full((3, 2), np.nan))
    try:
        result = gradcheck.check_layer(layer, X)
    except NonFiniteError:
        return
    assert layer.hit_x is False, "NaN returned at x was absorbed"
    assert result.ok  # NaN off the point (a shifted input) only skips a probe


def test_a_skipped_stale_cache_probe_says_so():
    notes = []
    for at in range(1, 11):
        try:
            notes += gradcheck.check_layer(Probed(at, garbage=np.full((3, 2), np.nan)), X).notes
        except NonFiniteError:
            pass
    assert any("stale-cache probe skipped" in n for n in notes)


def test_no_error_message_points_to_a_file_that_is_not_installed():
    import ast
    from pathlib import Path

    import gradcheck.models
    import gradcheck.reference
    offenders = []
    roots = {Path(m.__file__).parent for m in (gradcheck, gradcheck.models, gradcheck.reference)}
    for path in [p for root in roots for p in root.rglob("*.py")]:
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = ast.get_source_segment(source, node.exc) or ""
                if any(word in text for word in ("ARCHITECTURE", "DESIGN.md", "docs/")):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders

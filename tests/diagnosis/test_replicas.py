"""Replicas of real bugs (``tests/corpus/replicas.py``) are caught and named by their code.

Each replica's finding must carry the replica's code (``Finding.code``), name its tensor
and, where the row says so, state the readings (a factor's several meanings, the layer
classes of a model). Their correct twins pass with no finding. Correct layers drawn by
Hypothesis get no finding either, and noise planted in random entries is never given one
of the specific new names.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.replicas import (
    GELU,
    MSE,
    REPLICAS,
    Bias,
    Conv1D,
    Conv2D3x3,
    Embedding,
    Linear,
    MaxPool,
    Replica,
    lstm_step,
)
from gradcheck import check_function, check_layer, check_model
from gradcheck.diagnosis import diagnose
from gradcheck.diagnosis.evidence import Finding, RunEvidence, TensorEvidence
from gradcheck.engine.safety import CheckInputError

#: Codes added for the bugs of real code; none may be given to noise or a correct layer.
SPECIFIC = ("repeated-rows", "overlap-overwrite", "param-proportional", "nearby-function",
            "float32-rounding", "unread-param", "aliased-grads", "near-one-factor",
            "window-overwrite", "missing-output-gradient", "one-sample")


def _check(row: Replica, bad: bool, mode: str):
    make = row.make_bad if bad else row.make_good
    if row.kind == "layer":
        return check_layer(make(), *row.make_args(), mode=mode)
    if row.kind == "function":
        f, vjp = make()
        return check_function(f, *row.make_args(), vjp=vjp, names=row.names or None,
                              mode=mode)
    return check_model(make(), MSE(), *row.make_args(), mode=mode)


def _named(result, row: Replica) -> list[Finding]:
    """The findings with the row's code (and, for a tensor's finding, its tensor)."""
    return [f for f in result.diagnosis if f.code == row.code
            and (not row.tensor or f.startswith(f"{row.tensor}: "))]


def _modes(row: Replica) -> list[str]:
    return ["full", "fast"] if row.fast else ["full"]


CASES = [pytest.param(row, mode, id=f"{row.code}-{mode}-{row.name}")
         for row in REPLICAS for mode in _modes(row)]


@pytest.mark.parametrize(("row", "mode"), CASES)
def test_every_replica_is_caught_and_named_by_its_code(row, mode):
    result = _check(row, True, mode)
    assert not result.ok, f"{row.name} passed in mode {mode}"
    named = _named(result, row)
    assert named, [(f.code, str(f)) for f in result.diagnosis]
    for phrase in row.phrase:
        assert any(phrase in f for f in named), (phrase, named)


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("row", REPLICAS, ids=lambda r: r.name)
def test_the_correct_twin_of_every_replica_passes_without_a_finding(row, mode):
    result = _check(row, False, mode)
    assert result.ok, str(result)
    assert result.diagnosis == []


def test_every_replica_is_named_by_a_code_of_the_tables():
    from gradcheck.diagnosis import RUN_DETECTORS, TENSOR_DETECTORS

    codes = {row.code for row in (*TENSOR_DETECTORS, *RUN_DETECTORS)}
    codes |= {code for row in TENSOR_DETECTORS for code in row.also}
    assert "" not in codes
    assert {row.code for row in REPLICAS} <= codes
    assert set(SPECIFIC) <= {row.code for row in REPLICAS}
    assert len({row.name for row in REPLICAS}) == len(REPLICAS)


def test_aliased_grads_are_not_called_nondeterministic():
    result = check_layer(Linear(4, 3, bug="alias"), np.ones((5, 4)))
    codes = [f.code for f in result.diagnosis]
    assert "aliased-grads" in codes and "nondeterministic" not in codes


def test_a_check_leaves_an_aliasing_layer_as_it_was():
    layer = Linear(4, 3, bug="alias")
    before = layer.params["W"].copy()
    check_layer(layer, np.ones((5, 4)))
    np.testing.assert_array_equal(layer.params["W"], before)
    assert layer.grads["W"] is layer.params["W"]


def test_findings_are_strings_with_codes_in_the_result_dict():
    result = check_layer(Linear(4, 3, bug="unread"), np.ones((5, 4)))
    assert all(isinstance(f, str) and f.code for f in result.diagnosis)
    as_dict = result.to_dict()
    assert as_dict["diagnosis"] == [str(f) for f in result.diagnosis]
    if "findings" in as_dict:  # the code travels in to_dict once results carry it
        assert [f["code"] for f in as_dict["findings"]] == [f.code for f in result.diagnosis]


def test_a_finding_survives_pickling_with_its_code():
    import pickle

    f = pickle.loads(pickle.dumps(Finding("W: sign flipped", code="sign-flip")))
    assert f == "W: sign flipped" and f.code == "sign-flip"


# --------------------------------------------------------------------------------------
# Declared layouts


class _Declared:
    """A parameter-free identity layer declaring the given layouts."""

    def __init__(self, layouts):
        self.layouts = layouts
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x):
        return x * 1.0

    def backward(self, g):
        return g.copy()


@pytest.mark.parametrize(("layouts", "says"), [
    ({"x": "NCQ"}, ["_Declared", "'Q'", "unknown axis letter"]),
    ({"x": "NCHW"}, ["_Declared", "4 letters", "3 axes"]),
    ({"x": "NCC"}, ["_Declared", "'C'", "twice"]),
    ({"X": "NCW"}, ["_Declared", "'X'", "not a checked tensor"]),
    ({"x": 3}, ["_Declared", "str of axis letters"]),
    ("NCW", ["_Declared", "dict"]),
])
def test_a_bad_layout_is_a_clear_error_naming_the_layer_and_the_letter(layouts, says):
    with pytest.raises(CheckInputError) as err:
        check_layer(_Declared(layouts), np.ones((2, 2, 5)))
    for part in says:
        assert part in str(err.value), str(err.value)


@pytest.mark.parametrize("layout", ["NCW", "NCL", "NCT"])
def test_every_1d_convolution_spelling_is_accepted(layout):
    assert check_layer(Conv1D(layout), np.random.default_rng(0).standard_normal((2, 2, 7))).ok


# --------------------------------------------------------------------------------------
# No false diagnosis


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), vocab=st.integers(3, 8), n=st.integers(1, 3),
       t=st.integers(1, 4), dim=st.integers(1, 3), mode=st.sampled_from(["full", "fast"]))
def test_a_correct_embedding_with_any_ids_passes_without_a_finding(seed, vocab, n, t, dim,
                                                                    mode):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=(n, t))
    result = check_layer(Embedding(ids, vocab, dim), rng.standard_normal((n, t, dim)),
                         mode=mode)
    assert result.ok and result.diagnosis == [], str(result)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16),
       window=st.sampled_from([(2, 1), (2, 2), (3, 2), (3, 3), (3, 1)]),
       size=st.integers(5, 8))
def test_a_correct_overlapping_max_pool_passes_without_a_finding(seed, window, size):
    k, s = window
    x = np.random.default_rng(seed).standard_normal((1, 2, size, size))
    result = check_layer(MaxPool(k, s), x)
    assert result.ok and result.diagnosis == [], str(result)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), d=st.integers(2, 9), k=st.integers(1, 4),
       batch=st.integers(1, 6), layer=st.sampled_from(["linear", "gelu", "conv1d"]))
def test_correct_layers_get_no_finding(seed, d, k, batch, layer):
    rng = np.random.default_rng(seed)
    if layer == "linear":
        made, x = Linear(d, k, scale=math.sqrt(d)), rng.standard_normal((batch, d))
    elif layer == "gelu":
        made, x = GELU(), rng.standard_normal((batch, d))
    else:
        made, x = Conv1D("NCT"), rng.standard_normal((batch, 2, d + 2))
    result = check_layer(made, x)
    assert result.ok and result.diagnosis == [], str(result)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(6, 4), (2, 2, 7, 7), (5,),
                                                              (3, 8), (2, 3, 9)]),
       share=st.floats(0.05, 1.0), size=st.floats(1e-3, 1.0),
       role=st.sampled_from(["input", "param"]), layout=st.sampled_from(["", "NCW"]))
def test_noise_in_random_entries_is_never_given_a_specific_name(seed, shape, share, size,
                                                                  role, layout):
    """Random errors fit none of the patterns of real bugs: the diagnosis stays generic."""
    rng = np.random.default_rng(seed)
    n = rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    hit = rng.random(shape) < share
    a = np.where(hit, n * (1 + size * rng.standard_normal(shape)), n)
    wrong = ~np.isclose(a, n, rtol=1e-9)
    layout = layout if len(shape) == 3 else ""
    ev = TensorEvidence("x" if role == "input" else "W", role, a, n, wrong,
                        np.zeros(shape, bool), layout, value=rng.standard_normal(shape))
    ids = (rng.integers(0, shape[0], size=8),)
    findings = diagnose(RunEvidence(batch_size=shape[0], tensors=(ev,), precision="float64",
                                    indices=ids))
    assert not [f for f in findings if f.code in SPECIFIC], findings


# --------------------------------------------------------------------------------------
# The detectors on evidence built by hand


def _ev(name, a, n, *, role="param", value=None, layout=""):
    a, n = np.asarray(a, float), np.asarray(n, float)
    wrong = ~np.isclose(a, n, rtol=1e-12, atol=0)
    return TensorEvidence(name, role, a, n, wrong, np.zeros(a.shape, bool), layout, value)


def _codes(*tensors, **facts):
    return [f.code for f in diagnose(RunEvidence(batch_size=4, tensors=tensors, **facts))]


def test_rows_off_by_exactly_one_over_k_are_named_without_the_ids():
    n = np.random.default_rng(1).standard_normal((6, 4))
    a = n.copy()
    a[1] /= 2
    a[4] /= 3
    findings = diagnose(RunEvidence(tensors=(_ev("W", a, n),)))
    [row] = [f for f in findings if f.code == "repeated-rows"]
    assert "1/2, 1/3" in row and "np.add.at" in row


def test_rows_indexed_once_being_wrong_are_not_called_repeated():
    n = np.random.default_rng(2).standard_normal((6, 4))
    a = n.copy()
    a[0] *= 1.7  # row 0 is indexed once only
    assert "repeated-rows" not in _codes(_ev("W", a, n), indices=(np.array([0, 1, 1, 2]),))


def test_an_exact_float32_constant_is_called_a_constant():
    n = np.random.default_rng(3).standard_normal((5, 6))
    factor = float(np.float32(1 / 6)) * 6
    findings = diagnose(RunEvidence(tensors=(_ev("x", n * factor, n, role="input"),),
                                    precision="float64"))
    [f] = [f for f in findings if f.code == "float32-rounding"]
    assert "a constant rounded to float32" in f


def test_float32_sized_errors_in_float32_code_are_not_called_rounding():
    n = np.random.default_rng(3).standard_normal((5, 6))
    ev = _ev("x", n * (1 + 3e-8), n, role="input")
    assert "float32-rounding" not in _codes(ev, precision="float32")


def test_weight_decay_factor_is_stated():
    rng = np.random.default_rng(4)
    w, n = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    findings = diagnose(RunEvidence(tensors=(_ev("W", n + 0.14 * w, n, value=w),)))
    [f] = [f for f in findings if f.code == "param-proportional"]
    assert "0.14·W" in f


def test_a_gradient_proportional_to_the_weights_is_not_called_decay():
    """``L = c·ΣW²``: numeric ∝ W, so any factor bug is ∝ W too; the factor is named."""
    w = np.random.default_rng(5).standard_normal((4, 3))
    assert _codes(_ev("W", 3 * w, 2 * w, value=w))[-1] == "constant-factor"


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_the_older_corpus_gets_none_of_the_new_names(mode):
    """The bugs of ``corpus.CORPUS`` keep their own names: no new code claims them."""
    from corpus import CORPUS

    claimed = {}
    for row in CORPUS:
        result = check_layer(row.make_layer(np.float64), row.make_input(np.float64), mode=mode)
        codes = [f.code for f in result.diagnosis if f.code in SPECIFIC]
        if codes:
            claimed[row.name] = codes
    assert claimed == {}


def test_an_overlap_band_wider_than_one_row_is_recognized():
    """Windows of 5 at stride 3 overlap in bands of 2 rows every 3 (rows 3-4, 6-7, ...)."""
    rng = np.random.default_rng(7)
    n = rng.standard_normal((4, 3, 14, 14))
    band = (np.arange(14) % 3 < 2) & (np.arange(14) >= 3) & (np.arange(14) < 13)
    region = band[:, None] | band[None, :]
    hit = region & (rng.random(n.shape) < 0.5)
    a = np.where(hit, 0.0, n)
    findings = diagnose(RunEvidence(tensors=(_ev("x", a, n, role="input", layout="NCHW"),)))
    [f] = [f for f in findings if f.code == "overlap-overwrite"]
    assert "analytic 0 where the numeric is not" in f and "(mod 3)" in f


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_check_grad_reads_the_ids_a_function_closes_over(mode):
    """``check_grad`` of an embedding lookup: the ids live in the functions' closures."""
    from gradcheck import check_grad

    ids = np.array([0, 1, 2, 1, 3, 2, 1, 5])
    g = np.random.default_rng(0).standard_normal((8, 3))

    def f(w):
        return float(np.sum(g * w[ids]))

    def scatter(w):
        d = np.zeros_like(w)
        d[ids] += g  # the bug: one update kept per repeated id
        return d

    result = check_grad(f, scatter, np.random.default_rng(1).standard_normal((7, 3)),
                        mode=mode)
    [finding] = [f for f in result.diagnosis if f.code == "repeated-rows"]
    assert "rows 1, 2" in finding and "np.add.at" in finding


def test_repeated_rows_exactly_one_over_their_count_say_so():
    ids = np.array([0, 1, 1, 2, 2, 2, 3])
    n = np.random.default_rng(8).standard_normal((5, 2))
    counts = np.bincount(ids, minlength=5)
    a = n / np.maximum(counts, 1)[:, None]  # each repeated id kept once, equal updates
    findings = diagnose(RunEvidence(tensors=(_ev("W", a, n),), indices=(ids,)))
    [f] = [f for f in findings if f.code == "repeated-rows"]
    assert "rows 1, 2" in f and "exactly 1/count" in f


# --------------------------------------------------------------------------------------
# Overwrite where windows add, an output's gradient ignored, ids as an argument


NEW_CODES = ("window-overwrite", "missing-output-gradient", "one-sample")


class _Noisy:
    """A correct layer whose backward adds ``noise`` to some entries of ``dx``."""

    def __init__(self, layer, noise):
        self.layer, self.noise = layer, noise
        self.layouts = getattr(layer, "layouts", {})
        self.params, self.grads = layer.params, layer.grads

    def forward(self, x):
        return self.layer.forward(x)

    def backward(self, g):
        return self.layer.backward(g) + self.noise


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), layer=st.sampled_from(["pool3/1", "conv2d", "conv1d"]),
       mode=st.sampled_from(["full", "fast"]))
def test_correct_layers_whose_windows_overlap_everywhere_pass_without_a_finding(seed, layer,
                                                                                mode):
    rng = np.random.default_rng(seed)
    made, x = {"pool3/1": (MaxPool(3, 1), rng.standard_normal((1, 2, 5, 5))),
               "conv2d": (Conv2D3x3(2, 2), rng.standard_normal((1, 2, 4, 4))),
               "conv1d": (Conv1D("NCW"), rng.standard_normal((2, 2, 6)))}[layer]
    result = check_layer(made, x, mode=mode)
    assert result.ok and result.diagnosis == [], str(result)


@settings(max_examples=16, deadline=None)
@given(seed=st.integers(0, 2**16), layer=st.sampled_from(["pool3/1", "conv2d", "conv1d"]),
       share=st.floats(0.05, 1.0), size=st.floats(1e-2, 1.0),
       mode=st.sampled_from(["full", "fast"]))
def test_noise_in_an_overlapping_layers_dx_is_never_called_one_windows_share(seed, layer,
                                                                            share, size,
                                                                            mode):
    rng = np.random.default_rng(seed)
    made, x = {"pool3/1": (MaxPool(3, 1), rng.standard_normal((1, 2, 5, 5))),
               "conv2d": (Conv2D3x3(2, 2), rng.standard_normal((1, 2, 4, 4))),
               "conv1d": (Conv1D("NCW"), rng.standard_normal((2, 2, 6)))}[layer]
    noise = np.where(rng.random(x.shape) < share, size * rng.standard_normal(x.shape), 0.0)
    result = check_layer(_Noisy(made, noise), x, mode=mode)
    assert not [f for f in result.diagnosis if f.code in NEW_CODES], result.diagnosis


class _NoisyGrads(_Noisy):
    """A correct layer whose backward adds ``noise[k]`` to its parameter gradients."""

    def backward(self, g):
        dx = self.layer.backward(g)
        for k, noise in self.noise.items():
            self.grads[k][...] = self.grads[k] + noise
        return dx


@settings(max_examples=16, deadline=None)
@given(seed=st.integers(0, 2**16), layer=st.sampled_from(["bias", "linear"]),
       batch=st.integers(2, 6), share=st.floats(0.2, 1.0), size=st.floats(1e-2, 1.0),
       mode=st.sampled_from(["full", "fast"]))
def test_noise_in_a_parameter_gradient_is_never_called_one_samples_share(seed, layer, batch,
                                                                         share, size, mode):
    rng = np.random.default_rng(seed)
    made = Bias(4) if layer == "bias" else Linear(4, 3)
    x = rng.standard_normal((batch, 4))
    noise = {k: np.where(rng.random(v.shape) < share, size * rng.standard_normal(v.shape), 0.0)
             for k, v in made.params.items()}
    result = check_layer(_NoisyGrads(made, noise), x, mode=mode)
    assert not [f for f in result.diagnosis if f.code in NEW_CODES], result.diagnosis


@pytest.mark.parametrize("batch", [2, 7])
@pytest.mark.parametrize("last", [False, True])
def test_one_samples_share_is_named_for_the_first_and_the_last_sample(batch, last):
    class LastOrFirst(Bias):
        def backward(self, g):
            gz = g * (1 - self.y ** 2)
            self.grads["b"][...] = gz[-1 if last else 0]
            return gz

    result = check_layer(LastOrFirst(3), np.random.default_rng(batch).standard_normal((batch, 3)))
    found = [f for f in result.diagnosis if f.code == "one-sample"]
    assert found and ("the last of" if last else "the first of") in found[0], result.diagnosis


@pytest.mark.parametrize("layer", ["pool", "conv"])
def test_a_large_overwrite_is_named_from_the_few_entries_fast_mode_localizes(layer):
    """8192 entries in fast mode: the probe looks at entries it did not difference."""
    x = np.random.default_rng(1).standard_normal((4, 8, 16, 16))
    made = MaxPool(3, 1, bug="overwrite") if layer == "pool" else Conv2D3x3(8, 4, bug=True)
    result = check_layer(made, x, mode="fast")
    assert result.mode == "fast" and not result.ok
    assert "window-overwrite" in [f.code for f in result.diagnosis], result.diagnosis


def _lstm_point(rng, n=2, d=3, k=4):
    return (rng.standard_normal((n, d)), rng.standard_normal((n, k)),
            rng.standard_normal((n, k)), rng.standard_normal((d + k, 4 * k)) / 2)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), mode=st.sampled_from(["full", "fast"]),
       factor=st.sampled_from([None, 0.5, 2.0, -1.0]))
def test_a_two_output_step_gets_the_new_code_only_when_an_upstream_is_ignored(seed, mode,
                                                                             factor):
    """Correct: no finding. A wrong factor on the c-path: not "missing" (it is not 0)."""
    from corpus.replicas import _lstm_pair

    _, vjp = _lstm_pair(False)
    args = _lstm_point(np.random.default_rng(seed))

    def scaled(g, *a):
        return vjp((g[0], g[1] * factor), *a)

    result = check_function(lstm_step, *args, vjp=vjp if factor is None else scaled,
                            names=("x", "h", "c", "W"), mode=mode)
    if factor is None:
        assert result.ok and result.diagnosis == [], str(result)
    else:
        assert not result.ok
        assert "missing-output-gradient" not in [f.code for f in result.diagnosis]


def test_an_ignored_upstream_is_named_whichever_output_it_is():
    from corpus.replicas import _lstm_pair

    _, vjp = _lstm_pair(False)
    args = _lstm_point(np.random.default_rng(3))
    for k in (0, 1):
        def drop(g, *a, k=k):
            kept = [g[0], g[1]]
            kept[k] = np.zeros_like(kept[k])
            return vjp(tuple(kept), *a)

        result = check_function(lstm_step, *args, vjp=drop, names=("x", "h", "c", "W"))
        [f] = [f for f in result.diagnosis if f.code == "missing-output-gradient"]
        assert f"through output out[{k}] is missing" in f


def test_the_probe_changes_no_argument_and_is_closed_when_the_check_returns():
    from corpus.replicas import _lstm_pair

    f, vjp = _lstm_pair(True)
    args = _lstm_point(np.random.default_rng(4))
    before = [a.copy() for a in args]
    result = check_function(f, *args, vjp=vjp, names=("x", "h", "c", "W"))
    assert "missing-output-gradient" in [f.code for f in result.diagnosis]
    for a, b in zip(args, before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert result.evidence.contributions("W", np.arange(3)) is None
    layer_result = check_layer(MaxPool(3, 1, bug="overwrite"), np.ones((1, 1, 4, 4)) +
                               np.arange(16.0).reshape(1, 1, 4, 4) ** 1.5 / 9)
    assert layer_result.evidence.contributions("x", np.arange(3)) is None


def _shares_run(analytic, numeric, shares):
    """Evidence of an input ``x`` whose contribution probe returns ``shares`` (m, groups)."""
    a, n = np.asarray(analytic, float), np.asarray(numeric, float)
    ev = TensorEvidence("x", "input", a, n, ~np.isclose(a, n), np.zeros(a.shape, bool))
    table = np.asarray(shares, float)

    def contributions(name, entries):
        return (table[entries],)

    return RunEvidence(tensors=(ev,), outputs=("y",), contributions=contributions)


def test_one_windows_share_needs_the_probe_to_reproduce_the_numeric():
    shares = [[1.0, 2.0, 0.0], [0.5, 0.25, 3.0], [2.0, -1.0, 0.5], [1.5, 1.5, 0.0]]
    numeric = np.sum(shares, axis=1)
    analytic = [2.0, 3.0, 2.0, 1.5]  # each one window's share where several add
    assert "window-overwrite" in [f.code for f in diagnose(_shares_run(analytic, numeric,
                                                                       shares))]
    off = numeric * 1.01  # shares that do not add up to the numeric: no claim
    assert "window-overwrite" not in [f.code for f in diagnose(_shares_run(analytic, off,
                                                                           shares))]
    near = [2.01, 3.0, 2.0, 1.5]  # one entry is no single share: no claim
    assert "window-overwrite" not in [f.code for f in diagnose(_shares_run(near, numeric,
                                                                           shares))]


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_ids_passed_to_check_object_are_read_as_index_arrays(mode):
    from gradcheck import check_object

    class Lookup:
        def __init__(self, bug):
            self.bug = bug
            self.params = {"W": np.random.default_rng(5).standard_normal((7, 3))}
            self.grads = {"W": np.zeros((7, 3))}

        def forward(self, ids):
            self.ids = ids.copy()
            return self.params["W"][ids]

        def backward(self, g):
            dW = np.zeros_like(self.params["W"])
            if self.bug:
                dW[self.ids] += g
            else:
                np.add.at(dW, self.ids, g)
            self.grads["W"][...] = dW
            return None

    ids = np.array([[0, 1, 2, 1], [3, 2, 1, 5]])
    assert check_object(Lookup(False), ids, mode=mode).diagnosis == []
    result = check_object(Lookup(True), ids, mode=mode)
    [f] = [f for f in result.diagnosis if f.code == "repeated-rows"]
    assert f.startswith("W: ") and "rows 1, 2" in f


def test_check_layer_with_integer_ids_points_to_the_checks_that_take_them():
    from gradcheck.engine.safety import CheckTypeError

    with pytest.raises(CheckTypeError) as err:
        check_layer(Embedding(_IDS_FOR_ERROR, 7, 3), _IDS_FOR_ERROR)
    for part in ("x of Embedding", "int64", "check_object", "check_function"):
        assert part in str(err.value), str(err.value)


_IDS_FOR_ERROR = np.array([[0, 1, 2, 1], [3, 2, 1, 5]], dtype=np.int64)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_the_probes_calls_are_counted_in_the_evaluations(mode):
    from corpus.replicas import _lstm_pair

    def run(bug):
        f, vjp = _lstm_pair(bug)
        calls = []

        def counted(*args):
            calls.append(1)
            return f(*args)

        result = check_function(counted, *_lstm_point(np.random.default_rng(6)), vjp=vjp,
                                names=("x", "h", "c", "W"), mode=mode)
        return result, len(calls)

    twin, twin_calls = run(False)
    result, calls = run(True)
    assert "missing-output-gradient" in [f.code for f in result.diagnosis]
    # evaluations also count the vjp's calls: the same offset with the probe as without
    assert result.evaluations - calls == twin.evaluations - twin_calls

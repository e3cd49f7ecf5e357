"""Each shape of code people already write: one call, right on the correct version, and
the planted bug caught with the right tensor named."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from support import code_shapes as s

rng = np.random.default_rng(0)
X3 = rng.standard_normal((3, 4))
W3, B3 = rng.standard_normal((4, 2)), rng.standard_normal(2)
XC, WC, BC = rng.standard_normal((2, 2, 7)), rng.standard_normal((3, 2, 3)), rng.standard_normal(3)
LSTM = [rng.standard_normal(shape) for shape in [(2, 3), (2, 4), (2, 4), (3, 16), (4, 16), (16,)]]
IDS = np.array([[0, 2, 2], [1, 0, 3]])
EMB = rng.standard_normal((5, 3))
XM = rng.standard_normal((2, 6))
Q, K, V = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
MASK = np.where(rng.random((3, 5)) < 0.4, -np.inf, 0.0)
MASK[:, 0] = 0.0
XS, YS = rng.standard_normal((5, 4)), np.array([0, 1, 2, 1, 0])
XN, YN = rng.standard_normal((3, 1)), rng.random((2, 1))


def pair_affine(backward):
    return gradcheck.check_pair(s.affine_forward, backward, X3, W3, B3, names=("x", "w", "b"))


def pair_conv(bug):
    return gradcheck.check_pair(s.conv1d_forward, lambda d, c: s.conv1d_backward(d, c, bug=bug),
                                XC, WC, BC, {"stride": 2, "pad": 1},
                                names=("x", "w", "b", "conv_param"))


def pair_lstm(backward):
    return gradcheck.check_pair(s.lstm_step_forward, backward, *LSTM,
                                names=("x", "prev_h", "prev_c", "Wx", "Wh", "b"))


def function_attention(vjp):
    return gradcheck.check_function(s.attention, Q, K, V, MASK, vjp=vjp,
                                    names=("q", "k", "v", "mask"))


def loss_course(bug):
    model = s.TwoLayerNet(bug=bug)
    return gradcheck.check_loss(lambda: model.loss(XS, YS), params=model.params)


def loss_textbook(bug, lmbda=0.0):
    net = s.Network([3, 4, 2], bug=bug)
    return gradcheck.check_loss(lambda: s.quadratic_cost(net, XN, YN), lambda: net.backprop(XN, YN),
                                (net.biases, net.weights), names=("biases", "weights"))


def object_lazy(bug):
    layer = s.LazyDense(3, bug=bug)
    return gradcheck.check_object(layer, XM, params="parameters", grads="gradients",
                                  accumulates=True, reset=lambda lay: lay.inputs.clear())


def object_cell(bug):
    return gradcheck.check_object(s.LSTMCell(3, 4, bug=bug), *LSTM[:3], params="parameters",
                                  grads="gradients", names=("x", "h", "c"))


def object_embedding(bug):
    return gradcheck.check_object(s.Embedding(5, 3, bug=bug), IDS, params="parameters",
                                  grads="gradients", names="ids")


# (case, call of the correct version, call of the planted bug, tensors the bug must name)
CASES = [
    ("affine pair", lambda: pair_affine(s.affine_backward),
     lambda: pair_affine(s.affine_backward_bad_db), {"b"}),
    ("conv pair + conv_param", lambda: pair_conv(False), lambda: pair_conv(True), {"w"}),
    ("lstm step pair", lambda: pair_lstm(s.lstm_step_backward),
     lambda: pair_lstm(s.lstm_step_backward_bad), {"prev_c"}),
    ("embedding pair, int ids", lambda: gradcheck.check_pair(
        s.embedding_forward, s.embedding_backward, IDS, EMB, names=("ids", "W")),
     lambda: gradcheck.check_pair(s.embedding_forward, s.embedding_backward_drops_repeats,
                                  IDS, EMB, names=("ids", "W")), {"W"}),
    ("overlapping max-pool pair", lambda: gradcheck.check_pair(
        s.maxpool1d_forward, s.maxpool1d_backward, XM, names="x"),
     lambda: gradcheck.check_pair(s.maxpool1d_forward, s.maxpool1d_backward_overwrites, XM,
                                  names="x"), {"x"}),
    ("gelu function", lambda: gradcheck.check_function(s.gelu, XM, vjp=s.gelu_grad, names="x"),
     lambda: gradcheck.check_function(s.gelu, XM, vjp=s.gelu_grad_tanh_approx, names="x"),
     {"x"}),
    ("attention q, k, v with a -inf mask", lambda: function_attention(s.attention_vjp),
     lambda: function_attention(s.attention_vjp_bad), {"k"}),
    ("course model.loss -> (loss, grads)", lambda: loss_course(False), lambda: loss_course(True),
     {"W1"}),
    ("textbook backprop over lists", lambda: loss_textbook(False), lambda: loss_textbook(True),
     {"biases[0]", "weights[0]"}),
    ("library layer, lazy params, declared +=", lambda: object_lazy(False),
     lambda: object_lazy(True), {"b"}),
    ("library lstm cell, tuple in and out", lambda: object_cell(False), lambda: object_cell(True),
     {"c"}),
    ("library embedding, int ids", lambda: object_embedding(False),
     lambda: object_embedding(True), {"W"}),
]


@pytest.mark.parametrize(("case", "right", "wrong", "blamed"), CASES, ids=[c[0] for c in CASES])
def test_right_passes_and_the_bug_is_named(case, right, wrong, blamed):
    good = right()
    assert good.ok, str(good)
    bad = wrong()
    assert not bad.ok
    assert {t.name for t in bad.tensors if not t.ok} == blamed, str(bad)


def test_integer_ids_are_noted_not_refused():
    result = gradcheck.check_pair(s.embedding_forward, s.embedding_backward, IDS, EMB,
                                  names=("ids", "W"))
    assert [t.name for t in result.tensors] == ["W"]
    assert any("ids" in n and "constant" in n for n in result.notes)


def test_masked_entries_are_held_constant_and_reported():
    scores = np.array([[0.3, -np.inf, 1.2], [np.nan, 0.5, -0.1]])

    def f(z):
        return np.sin(np.where(np.isfinite(z), z, 0.0))

    def vjp(g, z):
        return g * np.cos(np.where(np.isfinite(z), z, 0.0))

    before = scores.copy()
    result = gradcheck.check_function(f, scores, vjp=vjp, names="scores", jvp=lambda t, z: (
        t[0] * np.cos(np.where(np.isfinite(z), z, 0.0))))
    assert result.ok, str(result)
    assert scores.tobytes() == before.tobytes()  # NaN payloads and -inf included
    assert [t.n_checked for t in result.tensors] == [4, 4]
    assert any("2 entries" in n and "scores" in n for n in result.notes)
    bad = gradcheck.check_function(f, scores, vjp=lambda g, z: vjp(g, z) * (np.arange(3) != 2),
                                   names="scores")
    assert not bad.ok
    assert bad.tensors[0].worst_index in {(0, 2), (1, 2)}  # the user's index, not the subset's


def test_without_the_declaration_accumulation_is_reported():
    layer = s.LazyDense(3)
    result = gradcheck.check_object(layer, XM, params="parameters", grads="gradients",
                                    reset=lambda lay: lay.inputs.clear())
    assert not result.ok
    assert result.evidence.accumulating
    assert any("accumulates=True" in n for n in result.notes)


def test_untrainable_parameters_are_constants():
    layer = s.LazyDense(3)
    result = object_lazy(False)
    assert {t.name for t in result.tensors} == {"x", "W", "b"}
    assert any("running" in n for n in result.notes)
    del layer


def test_the_l2_term_belongs_to_the_cost():
    net = s.Network([3, 4, 2])
    lmbda = 0.3

    def backprop_with_l2():
        nb, nw = net.backprop(XN, YN)
        return nb, [g + lmbda * w for g, w in zip(nw, net.weights, strict=True)]

    def cost():
        return s.quadratic_cost(net, XN, YN, lmbda)

    assert gradcheck.check_loss(cost, backprop_with_l2, (net.biases, net.weights),
                                names=("biases", "weights")).ok
    bad = gradcheck.check_loss(cost, lambda: net.backprop(XN, YN), (net.biases, net.weights),
                               names=("biases", "weights"))
    assert {t.name for t in bad.tensors if not t.ok} == {"weights[0]", "weights[1]"}


def test_parameters_are_restored_bit_identically_also_on_errors():
    model = s.TwoLayerNet()
    before = {k: v.copy() for k, v in model.params.items()}
    ids = {k: id(v) for k, v in model.params.items()}
    gradcheck.check_loss(lambda: model.loss(XS, YS), params=model.params)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("boom")
        return model.loss(XS, YS)

    with pytest.raises(gradcheck.UserCodeError):
        gradcheck.check_loss(flaky, params=model.params)
    for k, v in model.params.items():
        assert id(v) == ids[k] and v.tobytes() == before[k].tobytes()


def test_assert_twins_raise():
    with pytest.raises(gradcheck.GradientMismatch):
        gradcheck.assert_pair(s.affine_forward, s.affine_backward_bad_db, X3, W3, B3)
    model = s.TwoLayerNet(bug=True)
    with pytest.raises(gradcheck.GradientMismatch):
        gradcheck.assert_loss(lambda: model.loss(XS, YS), params=model.params)
    with pytest.raises(gradcheck.GradientMismatch):
        gradcheck.assert_object(s.Embedding(5, 3, bug=True), IDS, params="parameters",
                                grads="gradients")
    with pytest.raises(gradcheck.GradientMismatch):
        gradcheck.assert_function(s.gelu, XM, vjp=s.gelu_grad_tanh_approx)
    assert gradcheck.assert_pair(s.affine_forward, s.affine_backward, X3, W3, B3).ok


class NestedLayer:
    """The layer protocol with a tree of parameters: params = {"enc": {"W": ...}, "b": [...]}."""

    def __init__(self, bug=1.0):
        rng = np.random.default_rng(5)
        self.params = {"enc": {"W": rng.standard_normal((3, 2))}, "b": [np.zeros(2), np.ones(2)]}
        self.grads = {}
        self.bug = bug

    def forward(self, x):
        self.x = x
        return x @ self.params["enc"]["W"] + self.params["b"][0] * self.params["b"][1]

    def backward(self, g):
        b0, b1 = self.params["b"]
        self.grads = {"enc": {"W": self.x.T @ g}, "b": [g.sum(0) * b1 * self.bug, g.sum(0) * b0]}
        return g @ self.params["enc"]["W"].T


class MSE:
    def forward(self, p, t):
        self.d = p - t
        return float(np.mean(self.d ** 2))

    def backward(self):
        return 2 * self.d / self.d.size


def test_check_layer_and_check_model_take_nested_parameters():
    x = np.random.default_rng(6).standard_normal((4, 3))
    good = gradcheck.check_layer(NestedLayer(), x)
    assert good.ok, str(good)
    assert {t.name for t in good.tensors} == {"x", "enc.W", "b[0]", "b[1]"}
    bad = gradcheck.check_layer(NestedLayer(bug=2.0), x)
    assert {t.name for t in bad.tensors if not t.ok} == {"b[0]"}
    y = np.zeros((4, 2))
    assert gradcheck.check_model(NestedLayer(), MSE(), x, y).ok
    wrong = gradcheck.check_model(NestedLayer(bug=2.0), MSE(), x, y)
    assert {t.name for t in wrong.tensors if not t.ok} == {"b[0]"}


class KeepsFirstInput:
    """A library layer whose cache keeps the first input it saw (a stale cache)."""

    def __init__(self):
        self.parameters, self.gradients = {"w": np.array([0.5, -1.0, 2.0])}, {}

    def forward(self, x):
        if not hasattr(self, "x"):
            self.x = x
        return x * self.parameters["w"]

    def backward(self, g):
        self.gradients = {"w": np.sum(g * self.x, 0)}
        return g * self.parameters["w"]


def test_a_stale_cache_of_a_library_layer_shows():
    result = gradcheck.check_object(KeepsFirstInput(), XM[:, :3], params="parameters",
                                    grads="gradients")
    assert {t.name for t in result.tensors if not t.ok} == {"w"}


def test_check_grad_and_check_jacobian_take_trees():
    x = {"a": np.array([0.5, -1.0]), "b": [np.array([2.0])]}

    def f(t):
        return float(np.sum(t["a"] ** 2) * t["b"][0][0])

    def grad(t):
        return {"a": 2 * t["a"] * t["b"][0][0], "b": [np.array([np.sum(t["a"] ** 2)])]}

    r = gradcheck.check_grad(f, grad, x)
    assert r.ok and [t.name for t in r.tensors] == ["x.a", "x.b[0]"]
    wrong = gradcheck.check_grad(f, lambda t: {"a": grad(t)["a"], "b": [-grad(t)["b"][0]]}, x)
    assert [t.name for t in wrong.tensors if not t.ok] == ["x.b[0]"]

    def g(t):
        return t["a"] * t["b"][0]

    def vjp(t, v):
        return {"a": v * t["b"][0], "b": [np.array([np.sum(v * t["a"])])]}

    assert gradcheck.check_jacobian(g, x, vjp=vjp).ok
    assert gradcheck.check_grad(lambda x: float(np.sum(np.asarray(x) ** 2)),
                                lambda x: 2 * np.asarray(x), [[1.0, 2.0], [3.0, 4.0]]).ok


def test_check_object_takes_callables_for_the_methods():
    cell = s.LSTMCell(3, 4)
    calls = []

    def forward(x, h, c):
        calls.append(1)
        return cell.forward(x, h, c)

    result = gradcheck.check_object(cell, *LSTM[:3], forward=forward, params="parameters",
                                    grads="gradients", names=("x", "h", "c"))
    assert result.ok and calls


@pytest.mark.parametrize("bug", [False, True])
def test_check_object_takes_the_dicts_themselves_where_they_are_attributes(bug):
    by_name = gradcheck.check_object(s.LSTMCell(3, 4, bug=bug), *LSTM[:3], params="parameters",
                                     grads="gradients", names=("x", "h", "c"))
    cell = s.LSTMCell(3, 4, bug=bug)
    by_dict = gradcheck.check_object(cell, *LSTM[:3], params=cell.parameters,
                                     grads=cell.gradients, names=("x", "h", "c"))
    assert by_dict.ok == by_name.ok == (not bug)
    assert [t.n_wrong for t in by_dict.tensors] == [t.n_wrong for t in by_name.tensors]


def test_check_object_refuses_a_dict_that_is_not_the_layers_own_by_name():
    cell = s.LSTMCell(3, 4)
    with pytest.raises(gradcheck.CheckTypeError, match=r"params= names the attribute"):
        gradcheck.check_object(cell, *LSTM[:3], params=dict(cell.parameters),
                               grads="gradients")

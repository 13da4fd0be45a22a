"""SoftDecisionTree: path probabilities, explanations, gradients, picture, bad input."""

import itertools
import math
import warnings

import matplotlib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from lightning_distill.kd.soft_tree import SoftDecisionTree


def _reference_leaf_probabilities(tree, x):
    """Products of branch probabilities along each root-to-leaf path, by enumeration."""
    right = torch.sigmoid(tree.inverse_temperature * tree.inner(x.reshape(len(x), -1)))
    columns = []
    for turns in itertools.product((0, 1), repeat=tree.depth):  # 0 left, 1 right; leaf order
        node, probability = 0, torch.ones(len(x), dtype=x.dtype)
        for turn in turns:
            probability = probability * (right[:, node] if turn else 1 - right[:, node])
            node = 2 * node + 1 + turn
        columns.append(probability)
    return torch.stack(columns, dim=1)


@pytest.mark.parametrize("depth", [1, 3])
def test_leaf_probabilities_match_enumeration_and_sum_to_one(depth):
    torch.manual_seed(0)
    tree = SoftDecisionTree(5, 3, depth=depth, inverse_temperature=2.0).double()
    x = torch.randn(40, 5, dtype=torch.float64)
    probabilities = tree.leaf_probabilities(x)
    assert probabilities.shape == (40, 2**depth)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(40, dtype=torch.float64))
    torch.testing.assert_close(probabilities, _reference_leaf_probabilities(tree, x))


def test_output_is_the_mixture_or_the_max_leaf():
    torch.manual_seed(1)
    tree = SoftDecisionTree(4, 3, depth=2).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    leaves = tree.leaf_probabilities(x)
    q = torch.softmax(tree.leaf_logits, dim=1)
    torch.testing.assert_close(tree(x).exp(), leaves @ q)
    tree.output = "max_leaf"
    torch.testing.assert_close(tree(x).exp(), q[leaves.argmax(1)])


def test_an_output_set_after_construction_is_checked():
    # the warning about training max_leaf says to set tree.output afterwards: a misspelt value
    # had been read as "mixture", silently
    torch.manual_seed(1)
    tree = SoftDecisionTree(4, 3, depth=2).double().eval()
    x = torch.randn(10, 4, dtype=torch.float64)
    mixture = tree(x)
    with pytest.raises(ValueError, match=r"output must be one of .*; got 'max-leaf'"):
        tree.output = "max-leaf"
    assert tree.output == "mixture"
    torch.testing.assert_close(tree(x), mixture)
    tree.output = "max_leaf"
    q = torch.softmax(tree.leaf_logits, dim=1)
    torch.testing.assert_close(tree(x).exp(), q[tree.leaf_probabilities(x).argmax(1)])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("inverse_temperature", -2.0),
        ("inverse_temperature", 0.0),
        ("inverse_temperature", math.nan),
        ("penalty_strength", -1.0),
        ("penalty_strength", math.nan),
    ],
    ids=["beta-negative", "beta-zero", "beta-nan", "lambda-negative", "lambda-nan"],
)
def test_a_beta_or_lambda_set_after_construction_is_checked_as_the_constructor_does(name, value):
    # a negative beta mirrors every split, a NaN one predicts NaN; a negative or NaN lambda had
    # switched the balance penalty off: all silently
    with pytest.raises(ValueError) as built:
        SoftDecisionTree(4, 3, depth=2, **{name: value})
    torch.manual_seed(1)
    tree = SoftDecisionTree(4, 3, depth=2).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    before = tree(x)
    with pytest.raises(ValueError) as set_later:
        setattr(tree, name, value)
    assert str(set_later.value) == str(built.value)
    assert str(set_later.value).startswith(f"{name} must be")
    assert getattr(tree, name) == {"inverse_temperature": 1.0, "penalty_strength": 0.1}[name]
    torch.testing.assert_close(tree(x), before)


def test_a_learned_beta_is_still_a_parameter_of_the_tree():
    torch.manual_seed(1)
    tree = SoftDecisionTree(4, 3, depth=2).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    tree.inverse_temperature = 3.0  # a plain number, checked, as before
    fixed = tree(x)
    tree.inverse_temperature = torch.nn.Parameter(torch.tensor(3.0, dtype=torch.float64))
    assert "inverse_temperature" in dict(tree.named_parameters())
    torch.testing.assert_close(tree(x), fixed)
    tree(x).sum().backward()
    assert tree.inverse_temperature.grad is not None


def test_a_learned_beta_reloads_into_a_tree_built_the_same_way():
    # the saved beta is a parameter of the state: loaded as the weights are, not compared with
    # the value the rebuilt tree starts from (which refused every such reload)
    torch.manual_seed(2)
    x = torch.randn(10, 4)

    def learning_tree():
        tree = SoftDecisionTree(4, 3, depth=2)
        tree.inverse_temperature = torch.nn.Parameter(torch.tensor(1.0))
        return tree

    trained = learning_tree()
    with torch.no_grad():
        trained.inverse_temperature.fill_(2.5)
    state = trained.state_dict()
    assert state["_extra_state"]["inverse_temperature"] == 2.5
    rebuilt = learning_tree()
    rebuilt.load_state_dict(state)
    assert rebuilt.inverse_temperature.item() == 2.5
    torch.testing.assert_close(rebuilt(x), trained(x))
    # a tree with a fixed beta of another value still refuses the learned one's weights
    with pytest.raises(ValueError, match="inverse_temperature=2.5; this one has inverse_tem"):
        SoftDecisionTree(4, 3, depth=2).load_state_dict(state, strict=False)
    # a tree built with the learned value as a fixed beta takes the weights, the beta read
    # (a strict load had failed with torch's "Unexpected key(s) ... inverse_temperature")
    fixed = SoftDecisionTree(4, 3, depth=2, inverse_temperature=2.5)
    fixed.load_state_dict(state)
    assert fixed.inverse_temperature == 2.5
    torch.testing.assert_close(fixed(x), trained(x))


def test_a_beta_registered_as_a_buffer_is_assigned_as_torch_assigns_buffers():
    # a schedule kept as a buffer: a tensor assigned to it had been turned into a float by the
    # check and refused by torch ("cannot assign 'float' as buffer")
    tree = SoftDecisionTree(4, 3, depth=2)
    del tree.inverse_temperature
    tree.register_buffer("inverse_temperature", torch.tensor(2.0))
    tree.inverse_temperature = torch.tensor(3.0)
    assert dict(tree.named_buffers())["inverse_temperature"].item() == 3.0


def test_training_the_max_leaf_output_is_warned_about_once():
    # the most probable leaf sends no gradient to the inner nodes: only the leaves would learn
    torch.manual_seed(0)
    tree = SoftDecisionTree(3, 2, depth=2, output="max_leaf", penalty_strength=0.0)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    with pytest.warns(UserWarning, match="only the leaves learn.*output='mixture'"):
        torch.nn.functional.nll_loss(tree(x), y).backward()
    assert tree.inner.weight.grad is None and tree.leaf_logits.grad is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree(x)  # once per tree
        tree.eval()
        tree(x)  # predicting from one path is what the output is for


def test_explain_path_leads_to_the_argmax_leaf():
    torch.manual_seed(2)
    tree = SoftDecisionTree(6, 2, depth=3, feature_names=list("abcdef"))
    x = torch.randn(25, 6)
    leaves = tree.leaf_probabilities(x)
    explanations = tree.explain(x)
    with torch.no_grad():
        right = torch.sigmoid(tree.inner(x))
    for row, explanation in enumerate(explanations):
        assert explanation["leaf"] == int(leaves[row].argmax())
        node = 0
        product = 1.0
        for step in explanation["nodes"]:
            assert step["node"] == node
            goes_right = step["direction"] == "right"
            branch = float(right[row, node]) if goes_right else 1 - float(right[row, node])
            assert step["probability"] == pytest.approx(branch, abs=1e-6)
            assert set(step["top_features"]) <= set("abcdef")
            product *= branch
            node = 2 * node + 1 + goes_right
        assert node - (2**tree.depth - 1) == explanation["leaf"]  # the path ends at the leaf
        assert explanation["path_probability"] == pytest.approx(product, rel=1e-5)
        assert explanation["prediction"] == int(
            torch.tensor(explanation["class_distribution"]).argmax()
        )


def test_explain_names_only_inputs_that_pushed_the_way_taken():
    tree = SoftDecisionTree(
        4, 3, depth=1, feature_names=["a", "b", "c", "d"], inverse_temperature=2.0
    )
    with torch.no_grad():
        tree.inner.weight[:] = torch.tensor([[1.0, 2.0, -3.0, 0.5]])
        tree.inner.bias[:] = torch.tensor([8.0])
    # every input pushes left (w_j x_j < 0), the bias sends the row right: no input is a reason
    node = tree.explain(torch.tensor([[-1.0, -1.0, 1.0, -1.0]]))[0]["nodes"][0]
    assert node["direction"] == "right" and node["top_features"] == []
    assert node["top_contributions"] == [] and node["bias_contribution"] == 16.0
    assert tree.explain(torch.zeros(1, 4))[0]["nodes"][0]["top_features"] == []
    # two inputs push right, one left: the two, largest first; with the bias they make the logit
    x = torch.tensor([[1.0, 0.25, 1.0, 0.0]])
    node = tree.explain(x)[0]["nodes"][0]
    assert node["top_features"] == ["a", "b"] and node["top_contributions"] == [2.0, 1.0]
    logit = float(2.0 * (tree.inner.weight[0] * x[0]).sum() + 2.0 * tree.inner.bias[0])
    assert sum(node["top_contributions"]) - 6.0 + node["bias_contribution"] == pytest.approx(logit)
    # a row sent left: contributions counted towards the left
    node = tree.explain(torch.tensor([[0.0, 0.0, 4.0, 0.0]]))[0]["nodes"][0]
    assert node["direction"] == "left" and node["top_features"] == ["c"]
    assert node["top_contributions"] == [24.0] and node["bias_contribution"] == -16.0


@pytest.mark.parametrize("output", ["mixture", "max_leaf"])
def test_explain_says_what_the_tree_predicts_and_whether_the_path_agrees(output):
    # soft splits: the most probable path holds little of the probability, and its leaf can
    # predict another class than the mixture of all leaves does
    torch.manual_seed(4)
    tree = SoftDecisionTree(6, 2, depth=4, inverse_temperature=0.3, output=output)
    with torch.no_grad():
        tree.leaf_logits.mul_(30.0)
    x = torch.randn(200, 6)
    with torch.no_grad():
        predicted = tree(x).argmax(1).tolist()
    explanations = tree.explain(x)
    assert [e["model_prediction"] for e in explanations] == predicted
    assert [e["agrees"] for e in explanations] == [
        e["prediction"] == e["model_prediction"] for e in explanations
    ]
    if output == "max_leaf":  # the paper's test-time prediction: one path explains it all
        assert all(e["agrees"] for e in explanations)
    else:
        assert not all(e["agrees"] for e in explanations)


def test_settings_travel_with_the_state_dict():
    import io
    import warnings

    torch.manual_seed(5)
    names = list("abcde")
    tree = SoftDecisionTree(5, 2, depth=2, inverse_temperature=4.0, feature_names=names)
    buffer = io.BytesIO()
    torch.save(tree.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain data
    assert state["_extra_state"]["inverse_temperature"] == 4.0
    # readout labels are taken when the new tree has none; the predictions are the same;
    # the penalty settings act in training only, and the new tree's own stand
    same = SoftDecisionTree(5, 2, depth=2, inverse_temperature=4.0, penalty_strength=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same.load_state_dict(state)
    assert same.feature_names == names and same.penalty_strength == 0.0
    x = torch.randn(8, 5)
    torch.testing.assert_close(same(x), tree(x))
    # another inverse temperature would give other predictions from the same weights: refused
    # before any weight is copied, strict or not
    other = SoftDecisionTree(5, 2, depth=2)
    before = {k: v.clone() for k, v in other.state_dict().items() if k != "_extra_state"}
    with pytest.raises(ValueError, match=r"inverse_temperature=4\.0; this one has .*=1\.0"):
        other.load_state_dict(state)
    for key, value in before.items():
        assert torch.equal(other.state_dict()[key], value), key
    with pytest.raises(ValueError, match="inverse_temperature=4.0"):
        other.load_state_dict(state, strict=False)
    # reading a mixture-trained tree by its most probable leaf is the paper's test-time use
    with pytest.warns(UserWarning, match="trained with output='mixture'"):
        SoftDecisionTree(5, 2, depth=2, inverse_temperature=4.0, output="max_leaf").load_state_dict(
            state
        )
    # a state saved before trees kept their settings loads, strictly, with this tree's own
    old = {k: v for k, v in state.items() if k != "_extra_state"}
    kept = SoftDecisionTree(5, 2, depth=2, inverse_temperature=4.0)
    kept.load_state_dict(old)
    torch.testing.assert_close(kept(x), tree(x))


def test_gradcheck_float64():
    torch.manual_seed(3)
    tree = SoftDecisionTree(3, 2, depth=2, inverse_temperature=1.5).double()
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: tree(inp), (x,))
    weight = tree.inner.weight.detach().clone().requires_grad_(True)
    leaf = tree.leaf_logits.detach().clone().requires_grad_(True)

    def through_parameters(w, phi):
        return torch.func.functional_call(
            tree, {"inner.weight": w, "leaf_logits": phi}, (x.detach(),)
        )

    assert torch.autograd.gradcheck(through_parameters, (weight, leaf))


def test_balance_penalty_formula_and_gradient():
    torch.manual_seed(4)
    tree = SoftDecisionTree(3, 2, depth=2, penalty_strength=0.7).double()
    x = torch.randn(30, 3, dtype=torch.float64)
    tree.train()
    tree(x)
    penalty = tree.pop_balance_penalty()
    assert tree.balance_penalty is None
    right = torch.sigmoid(tree.inner(x))
    reach = torch.stack([torch.ones(30, dtype=torch.float64), 1 - right[:, 0], right[:, 0]], dim=1)
    alpha = (reach * right).sum(0) / reach.sum(0)
    weights = torch.tensor([1.0, 0.5, 0.5], dtype=torch.float64)
    reference = -0.7 * (weights * 0.5 * (alpha.log() + (1 - alpha).log())).sum()
    torch.testing.assert_close(penalty, reference)
    penalty.backward()
    assert tree.inner.weight.grad is not None
    tree.eval()
    tree(x)
    assert tree.balance_penalty is None  # only training batches carry the penalty


def _balance_reference(tree, x):
    """The paper's penalty of a depth-2 tree, alpha over all the rows of ``x``."""
    right = torch.sigmoid(tree.inner(x))
    ones = torch.ones(len(x), dtype=x.dtype)
    reach = torch.stack([ones, 1 - right[:, 0], right[:, 0]], dim=1)
    alpha = (reach * right).sum(0) / reach.sum(0)
    weights = torch.tensor([1.0, 0.5, 0.5], dtype=x.dtype)
    return -tree.penalty_strength * (weights * 0.5 * (alpha.log() + (1 - alpha).log())).sum()


def test_a_tree_called_twice_in_a_step_has_the_penalty_of_all_its_rows():
    # a student applying one tree to two views (or two inputs, or chunks of a batch): the
    # penalty is the paper's over every row the tree routed, not the last call's alone
    torch.manual_seed(5)
    tree = SoftDecisionTree(3, 2, depth=2, penalty_strength=0.7).double().train()
    first = torch.randn(12, 3, dtype=torch.float64)
    second = torch.randn(20, 3, dtype=torch.float64) + 1.5
    both = torch.cat([first, second])
    tree(first)
    tree.eval()
    tree(torch.randn(7, 3, dtype=torch.float64))  # eval calls are no part of it
    tree.train()
    with torch.no_grad():
        tree(torch.randn(7, 3, dtype=torch.float64))  # nor no-grad calls
    tree(second)
    penalty = tree.balance_penalty
    torch.testing.assert_close(penalty, _balance_reference(tree, both))
    assert not torch.allclose(penalty, _balance_reference(tree, second))
    # its gradient is the reference's
    grad = torch.autograd.grad(penalty, tree.inner.weight, retain_graph=True)[0]
    reference = torch.autograd.grad(_balance_reference(tree, both), tree.inner.weight)[0]
    torch.testing.assert_close(grad, reference)
    # a read forgets the calls: the next step's penalty is its own
    assert tree.pop_balance_penalty() is penalty and tree.balance_penalty is None
    tree(first)
    torch.testing.assert_close(tree.balance_penalty, _balance_reference(tree, first))
    # so does a backward pass through them (a loop reading the attribute, never popping)
    (tree(second).sum() + tree.balance_penalty).backward()
    tree(first)
    torch.testing.assert_close(tree.balance_penalty, _balance_reference(tree, first))


@pytest.mark.parametrize("bias", [-5.0, -20.0])
def test_a_saturated_node_keeps_the_gradient_that_balances_it(bias):
    # a root that sends every input left: alpha = sigmoid(bias), and the penalty's derivative
    # in the bias is -0.5 * (1 - 2 alpha), near -0.5 (a clamp of alpha at 1e-6 made it 0
    # beyond bias -13.8, just where the push back is needed)
    tree = SoftDecisionTree(3, 2, depth=1, penalty_strength=1.0).double().train()
    with torch.no_grad():
        tree.inner.weight.zero_()
        tree.inner.bias.fill_(bias)
    tree(torch.randn(8, 3, dtype=torch.float64))
    penalty = tree.pop_balance_penalty()
    (gradient,) = torch.autograd.grad(penalty, tree.inner.bias)
    alpha = torch.sigmoid(torch.tensor(bias, dtype=torch.float64))
    torch.testing.assert_close(penalty, -0.5 * (alpha.log() + (-alpha).log1p()))
    torch.testing.assert_close(gradient, (-0.5 * (1 - 2 * alpha)).reshape(1))


def test_images_are_flattened_and_filters_drawn(tmp_path):
    torch.manual_seed(5)
    tree = SoftDecisionTree(16, 3, depth=2, input_shape=(4, 4))
    assert tree(torch.randn(2, 1, 4, 4)).shape == (2, 3)
    figure = tree.plot_filters(class_names=["a", "b", "c"])
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3 + 4
    assert len(figure.axes[0].images) == 1
    tabular = SoftDecisionTree(3, 2, depth=1, feature_names=["u", "v", "w"])
    given = Figure()
    assert tabular.plot_filters(given) is given
    assert len(given.axes[0].patches) == 3  # one bar per feature
    assert matplotlib.get_backend()  # nothing opened through pyplot
    figure.savefig(tmp_path / "tree.png")
    assert figure.axes[-1].get_xticklabels()[2].get_text() == "c"
    with pytest.raises(
        ValueError, match=r"class_names must be one name per class \(3\); got '2 names'"
    ):
        tree.plot_filters(class_names=["a", "b"])
    with pytest.raises(TypeError, match="class_names must be a sequence of str"):
        tree.plot_filters(class_names="abc")
    # had been AttributeError: 'str' object has no attribute 'add_gridspec'
    with pytest.raises(TypeError, match=r"figure must be a matplotlib Figure .*; got 'tree.png'"):
        tree.plot_filters("tree.png")
    parent = Figure()
    (sub,) = parent.subfigures(1, 1, squeeze=False)[0]
    assert tree.plot_filters(sub) is sub  # a subfigure is drawn on


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"depth": 0}, ValueError, r"depth must be an integer >= 1 and <= 16; got 0\."),
        ({"depth": 2.0}, TypeError, "depth must be an integer"),
        ({"num_classes": 1}, ValueError, "num_classes must be"),
        ({"inverse_temperature": 0.0}, ValueError, "inverse_temperature must be"),
        ({"output": "leaf"}, ValueError, "output must be one of"),
        ({"input_shape": (3, 3)}, ValueError, "input_shape must be a shape of 8 elements"),
        ({"feature_names": ["a"]}, ValueError, "feature_names must be a list of 8 names"),
        ({"input_shape": (-2, -4)}, ValueError, r"input_shape must be an integer >= 1; got -2"),
        ({"input_shape": (2.0, 4.0)}, TypeError, "input_shape must be an integer"),
        ({"input_shape": 8}, TypeError, "input_shape must be a tuple of positive ints; got 8"),
        ({"feature_names": "abcdefgh"}, TypeError, "feature_names must be a list of names"),
        ({"feature_names": list("aabcdefg")}, ValueError, "feature_names must be distinct"),
    ],
)
def test_bad_arguments(kwargs, error, pattern):
    options = {"in_features": 8, "num_classes": 3, **kwargs}
    with pytest.raises(error, match=pattern):
        SoftDecisionTree(**options)


def test_bad_inputs():
    tree = SoftDecisionTree(4, 2, depth=2)
    with pytest.raises(ValueError, match="x must be a batch of inputs with 4 elements each"):
        tree(torch.randn(3, 5))
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        tree(torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="leaf must be an integer >= 0 and <= 3"):
        tree.path_to_leaf(4)


def test_a_zero_dimensional_input_is_refused_by_name():
    # a 0-d tensor has no batch dimension: it had failed with torch's IndexError
    tree = SoftDecisionTree(4, 2, depth=2)
    for call in (tree, tree.leaf_probabilities, tree.explain):
        with pytest.raises(ValueError, match=r"x must be a batch of inputs .*; got \(\)\."):
            call(torch.tensor(1.0))


def test_an_unordered_set_of_feature_names_is_refused():
    # a set's order is not the features' (and varies from run to run with string hashing):
    # every name in explain() and the bar charts would be attached to another feature
    with pytest.raises(TypeError, match=r"feature_names must be .*ordered.*; got \{"):
        SoftDecisionTree(3, 2, feature_names={"a", "b", "c"})
    with pytest.raises(TypeError, match="feature_names must be .*ordered"):
        SoftDecisionTree(3, 2, feature_names=frozenset("abc"))
    # ordered collections of names keep their order
    names = {"a": 0, "b": 1, "c": 2}
    assert SoftDecisionTree(3, 2, feature_names=names.keys()).feature_names == ["a", "b", "c"]
    assert SoftDecisionTree(3, 2, feature_names=("c", "a", "b")).feature_names == ["c", "a", "b"]


def test_inputs_of_another_dtype_are_refused_outside_autocast():
    tree = SoftDecisionTree(4, 2, depth=2)
    for dtype in (torch.float64, torch.float16):
        x = torch.randn(3, 4, dtype=dtype)
        for call in (tree, tree.leaf_probabilities, tree.explain):
            with pytest.raises(
                TypeError, match=f"x must be of the tree's dtype torch.float32.*{dtype}"
            ):
                call(x)
    # under autocast torch mixes the dtypes itself
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert tree(torch.randn(3, 4, dtype=torch.bfloat16)).shape == (3, 2)
        # but never casts float64: a float64 x for a float32 tree (or the reverse) had failed
        # with torch's "mat1 and mat2 must have the same dtype"
        x = torch.randn(3, 4, dtype=torch.float64)
        for call in (tree, tree.leaf_probabilities, tree.explain):
            with pytest.raises(TypeError, match="x must be of the tree's dtype torch.float32"):
                call(x)
        with pytest.raises(TypeError, match="x must be of the tree's dtype torch.float64"):
            SoftDecisionTree(4, 2, depth=2).double()(torch.randn(3, 4))
        assert SoftDecisionTree(4, 2, depth=2).double()(x).dtype == torch.float64


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_row_has_no_most_probable_leaf(bad):
    torch.manual_seed(2)
    tree = SoftDecisionTree(4, 3, depth=2).eval()
    x = torch.randn(5, 4)
    x[1, 0] = bad
    mixture = tree(x)
    tree.output = "max_leaf"
    max_leaf = tree(x)
    # the other rows keep their answers; the row whose path probabilities are undefined gets
    # NaN from both outputs rather than the first leaf's distribution
    undefined = torch.isnan(tree.leaf_probabilities(x)).any(dim=1)
    for out in (mixture, max_leaf):
        assert torch.isnan(out[undefined]).all()
        assert torch.isfinite(out[~undefined]).all()
    with pytest.raises(ValueError, match="x must be finite"):
        tree.explain(x)


def test_an_empty_batch_gives_empty_outputs():
    tree = SoftDecisionTree(4, 3, depth=3)
    empty = torch.zeros(0, 4)
    assert tree(empty).shape == (0, 3) and tree.leaf_probabilities(empty).shape == (0, 8)
    assert tree.explain(empty) == []


def test_copy_and_pickle_after_a_training_forward():
    import copy
    import pickle

    tree = SoftDecisionTree(3, 2, depth=2)
    tree.train()
    tree(torch.randn(4, 3))
    assert tree.balance_penalty is not None
    twin = copy.deepcopy(tree)
    assert twin.balance_penalty is None and tree.balance_penalty is not None
    restored = pickle.loads(pickle.dumps(tree))
    torch.testing.assert_close(restored.inner.weight, tree.inner.weight)


def test_multi_channel_filters_are_drawn_channel_by_channel():
    # a node that weighs channel 0 against channel 1: averaging the channels drew it empty
    tree = SoftDecisionTree(2 * 3 * 4, 2, depth=1, input_shape=(2, 3, 4))
    pattern = torch.arange(12.0).view(3, 4) - 5.5
    with torch.no_grad():
        tree.inner.weight[0] = torch.stack([pattern, -pattern]).flatten()
    drawn = np.asarray(tree.plot_filters().axes[0].images[0].get_array().filled(np.nan))
    assert drawn.shape == (3, 2 * 4 + 1)  # the two channels side by side, a blank column between
    np.testing.assert_array_equal(drawn[:, :4], pattern.numpy())
    np.testing.assert_array_equal(drawn[:, 5:], -pattern.numpy())
    assert np.isnan(drawn[:, 4]).all()


def test_the_balance_penalty_stays_finite_for_unreached_nodes_and_empty_batches():
    # an infinite activation sends no input to a child (its path probability 0 on every row),
    # and an empty batch reaches no node: the log-space penalty gave inf or NaN there
    tree = SoftDecisionTree(6, 3, depth=2, penalty_strength=0.1).double().train()
    activation = torch.tensor([[-float("inf"), 0.3, -0.2]] * 4, dtype=torch.float64)
    activation.requires_grad_(True)
    root = activation[:, 0]
    log_nodes = torch.stack(
        [torch.zeros(4, dtype=torch.float64), F.logsigmoid(-root), F.logsigmoid(root)], 1
    )
    penalty = tree._balance_penalty(log_nodes, activation)
    (gradient,) = torch.autograd.grad(penalty, activation)
    # finite, and so are the gradients of the nodes with finite activations
    assert torch.isfinite(penalty) and torch.isfinite(gradient[:, 1:]).all()
    # the unreached node (2) adds nothing: the root's term at the floor, node 1's as computed
    alpha_1 = torch.sigmoid(torch.tensor(0.3, dtype=torch.float64))
    expected = -0.1 * (0.5 * -69.0776 + 0.5 * 0.5 * (alpha_1.log() + (-alpha_1).log1p()))
    torch.testing.assert_close(penalty.detach(), expected, rtol=1e-5, atol=1e-6)
    empty = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    assert float(tree._balance_penalty(empty, empty)) == 0.0


@pytest.mark.parametrize("kind", ["ndarray", "pandas Index", "tuple"])
def test_class_names_as_an_array_or_index_label_the_leaves(kind):
    import pandas as pd

    names = ["cat", "dog", "eel"]
    given = {"ndarray": np.array(names), "pandas Index": pd.Index(names), "tuple": tuple(names)}
    tree = SoftDecisionTree(4, 3, depth=1)
    figure = tree.plot_filters(class_names=given[kind])
    # each leaf's axis lists the classes in the order given
    for ax in figure.axes[1:]:
        assert [label.get_text() for label in ax.get_xticklabels()] == names
    with pytest.raises(TypeError, match="class_names must be a sequence of str"):
        tree.plot_filters(class_names={"cat", "dog", "eel"})


@pytest.mark.parametrize(("name", "value"), [("in_features", 5), ("num_classes", 7), ("depth", 3)])
def test_the_trees_sizes_are_fixed_at_construction(name, value):
    # its parameters are sized from them: set later, num_classes disagreed with the leaves'
    # logits silently, depth failed in the forward pass with a torch error
    tree = SoftDecisionTree(3, 2, depth=2)
    with pytest.raises(AttributeError, match=rf"^{name} is set at construction"):
        setattr(tree, name, value)
    assert tree(torch.randn(4, 3)).shape == (4, 2)
    import copy

    copied = copy.deepcopy(tree).double()
    copied.load_state_dict(tree.state_dict())
    assert (copied.in_features, copied.num_classes, copied.depth) == (3, 2, 2)


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("feature_names", ["a"], ValueError),
        ("feature_names", "abc", TypeError),
        ("feature_names", ["a", "a", "b"], ValueError),
        ("input_shape", (9,), ValueError),
        ("input_shape", (3, 0), ValueError),
    ],
)
def test_feature_names_and_input_shape_set_later_are_checked_as_the_constructor_does(
    name, value, error
):
    # set later, names of the wrong number had named the features of explanations wrongly
    with pytest.raises(error) as built:
        SoftDecisionTree(3, 2, depth=2, **{name: value})
    tree = SoftDecisionTree(3, 2, depth=2)
    with pytest.raises(error) as set_later:
        setattr(tree, name, value)
    assert str(set_later.value) == str(built.value)
    assert getattr(tree, name) is None
    names = ["age", "income", "debt"]
    tree.feature_names = names
    names[0] = "changed"  # the tree keeps a list of its own
    tree.input_shape = [1, 3]
    assert tree.feature_names == ["age", "income", "debt"] and tree.input_shape == (1, 3)

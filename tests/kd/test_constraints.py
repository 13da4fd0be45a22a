"""Monotonic and L1Sparsity penalties, and the monotonicity check."""

import copy
import warnings
from collections import UserDict

import pytest
import torch
from torch import nn

from lightning_distill.kd.constraints import (
    L1Sparsity,
    Monotonic,
    box_points,
    check_constraints_on,
    monotonic_penalty,
    monotonicity_violations,
)
from lightning_distill.kd.soft_tree import SoftDecisionTree


def _mlp(seed=0, features=4, classes=2, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(features, 16), nn.Tanh(), nn.Linear(16, classes)).to(dtype)


def _finite_difference_penalty(model, points, feature, output, direction, margin, eps=1e-6):
    raised, lowered = points.clone(), points.clone()
    raised[:, feature] += eps
    lowered[:, feature] -= eps
    with torch.no_grad():
        slope = (model(raised)[:, output] - model(lowered)[:, output]) / (2 * eps)
    return torch.clamp(margin - direction * slope, min=0).square().mean()


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_penalty_equals_finite_difference_formula(direction, margin):
    model = _mlp()
    points = torch.randn(200, 4, dtype=torch.float64)
    penalty = monotonic_penalty(model, points, 2, output=1, direction=direction, margin=margin)
    reference = _finite_difference_penalty(model, points, 2, 1, direction, margin)
    assert float(reference) > 0  # a random MLP is not monotone: the check is not vacuous
    torch.testing.assert_close(penalty.detach(), reference, rtol=1e-6, atol=1e-9)


def test_log_probability_quantity_equals_finite_difference():
    model = _mlp(classes=3)
    points = torch.randn(100, 4, dtype=torch.float64)
    penalty = monotonic_penalty(model, points, 0, output=2, quantity="log_probability")
    eps = 1e-6
    up, down = points.clone(), points.clone()
    up[:, 0] += eps
    down[:, 0] -= eps
    with torch.no_grad():
        slope = (model(up).log_softmax(1)[:, 2] - model(down).log_softmax(1)[:, 2]) / (2 * eps)
    torch.testing.assert_close(penalty.detach(), torch.relu(-slope).square().mean())


def test_constraint_draws_batch_and_uniform_box_points():
    model = _mlp()
    batch = torch.rand(32, 4, dtype=torch.float64) * torch.tensor([1.0, 2.0, 3.0, 4.0])
    constraint = Monotonic(feature=1, output=0, margin=0.1)
    torch.manual_seed(5)
    value = constraint.penalty(model, batch)
    torch.manual_seed(5)
    points = box_points(batch, 1024)
    assert points.shape == (32 + 1024, 4)
    torch.testing.assert_close(points[:32], batch)
    low, high = batch.min(0).values, batch.max(0).values
    assert bool((points[32:] >= low).all()) and bool((points[32:] <= high).all())
    reference = _finite_difference_penalty(model, points, 1, 0, 1, 0.1)
    torch.testing.assert_close(value.detach(), reference, rtol=1e-6, atol=1e-9)


class _MonotoneWithMargin(nn.Module):
    """3 * x0 plus a bounded non-monotone function of the other features: slope 3 in x0."""

    def __init__(self):
        super().__init__()
        self.rest = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x):
        return self.rest(x[:, 1:]) + 3.0 * x[:, :1]


def test_zero_for_a_model_monotone_with_margin():
    model = _MonotoneWithMargin()
    x = torch.randn(64, 4) * 5
    assert float(Monotonic(0, 1, output=0, margin=2.9).penalty(model, x).detach()) == 0.0
    assert float(Monotonic(0, 1, output=1, margin=2.9).penalty(model, x).detach()) == 0.0
    # the margin is honoured: asking for a slope of 4 costs (4 - 3)^2 everywhere
    torch.testing.assert_close(
        Monotonic(0, 1, output=0, margin=4.0).penalty(model, x), torch.tensor(1.0)
    )
    # and the other direction is penalised everywhere
    torch.testing.assert_close(Monotonic(0, -1, output=0).penalty(model, x), torch.tensor(9.0))


def test_gradients_reach_the_student_only():
    student, teacher = _mlp(0, dtype=torch.float32), _mlp(1, dtype=torch.float32)
    x = torch.randn(16, 4)
    with torch.no_grad():
        teacher(x)
    penalty = Monotonic(0, 1, margin=1.0).penalty(student, x)
    penalty.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student[0].parameters())
    assert all(p.grad is None for p in teacher.parameters())
    assert x.grad is None and not x.requires_grad


def test_dict_inputs_named_feature():
    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(2, 2)

        def forward(self, inputs):
            x = torch.stack([inputs["income"], inputs["age"]], dim=1)
            return self.net(x) + inputs["region"].float().unsqueeze(1)

    model = Named()
    batch = {"income": torch.rand(10), "age": torch.rand(10), "region": torch.randint(3, (10,))}
    before = {k: v.clone() for k, v in batch.items()}
    value = Monotonic("income", output=1).penalty(model, batch)
    slope = model.net.weight[1, 0].detach()
    torch.testing.assert_close(value.detach(), torch.relu(-slope).square())
    for key in batch:
        assert torch.equal(batch[key], before[key])
    with pytest.raises(ValueError, match=r"feature must be a key of the dict inputs .*'salary'"):
        Monotonic("salary").penalty(model, batch)
    with pytest.raises(TypeError, match=r"inputs\['region'\] must be a floating-point"):
        Monotonic("region").penalty(model, batch)


class _Encoding(UserDict):
    """A mapping of inputs read by attribute too, as transformers' BatchEncoding."""

    def __getattr__(self, name):
        if name != "data" and name in self.data:
            return self.data[name]
        raise AttributeError(name)


def test_mapping_inputs_reach_the_model_in_their_own_type():
    # the points of a constraint (and of monotonicity_violations) are given to the model in the
    # type of the inputs: a model reading them by attribute had failed on a plain dict
    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(2, 2)

        def forward(self, inputs):
            return self.net(torch.stack([inputs.income, inputs.age], dim=1))

    model = Named()
    torch.manual_seed(0)
    batch = _Encoding({"income": torch.rand(10), "age": torch.rand(10)})
    before = {k: v.clone() for k, v in batch.items()}
    value = Monotonic("income", output=1, n_points=8).penalty(model, batch)
    slope = model.net.weight[1, 0].detach()
    torch.testing.assert_close(value.detach(), torch.relu(-slope).square())
    assert all(torch.equal(batch[key], before[key]) for key in batch)
    # a decreasing model violates "increasing" at every row; an increasing one at none
    for sign, expected in ((-1.0, 1.0), (1.0, 0.0)):
        with torch.no_grad():
            model.net.weight[1, 0] = sign
        shares = monotonicity_violations(model, batch, "income", output=1)
        assert float(shares["gradient"]) == float(shares["pairs"]) == expected


def test_dict_inputs_keep_values_that_are_not_per_row():
    """A dict input may carry values of the whole batch beside its columns (a string option, a
    0-d scale, a per-class vector): the uniform points keep them as they are, as the teacher
    and the student's own call get them (they had failed deep in torch, or in an attribute
    lookup when such a value came first)."""

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(2, 3)

        def forward(self, inputs):
            assert inputs["mode"] == "fast"
            x = torch.stack([inputs["income"], inputs["age"]], dim=1)
            return self.net(x) * inputs["scale"] + inputs["offset"]

    torch.manual_seed(0)
    model = Scaled()
    rows = 6
    batch = {
        "mode": "fast",
        "scale": torch.tensor(2.0),
        "offset": torch.rand(3),  # per class, not per row
        "income": torch.rand(rows),
        "age": torch.rand(rows),
    }
    value = Monotonic("income", output=1, margin=1.0, n_points=16).penalty(model, batch)
    # the model is linear in income: its slope is the weight times the scale, on every row
    slope = 2.0 * model.net.weight[1, 0].detach()
    torch.testing.assert_close(value.detach(), torch.relu(1.0 - slope).square())
    assert batch["mode"] == "fast" and batch["scale"].shape == () and batch["offset"].shape == (3,)


def test_l1_sparsity_sums_absolute_weights_of_named_modules():
    model = _mlp(dtype=torch.float32)
    everything = L1Sparsity(weight=0.1).penalty(model, None)
    reference = model[0].weight.abs().sum() + model[2].weight.abs().sum()
    torch.testing.assert_close(everything, reference)
    first = L1Sparsity(modules=["0"]).penalty(model, None)
    torch.testing.assert_close(first, model[0].weight.abs().sum())
    assert torch.equal(
        L1Sparsity(modules=[model[2]]).penalty(model, None), model[2].weight.abs().sum()
    )
    first.backward()
    torch.testing.assert_close(model[0].weight.grad, model[0].weight.sign())


def test_l1_sparsity_modules_set_after_construction_are_checked_as_the_constructor_does():
    # an int failed at the step with "'int' object is not iterable" from inside the penalty, a
    # single name was read letter by letter
    model = nn.Sequential()
    model.add_module("fc", nn.Linear(3, 2))
    model.add_module("out", nn.Linear(2, 1))
    constraint = L1Sparsity(weight=1.0)
    for value, error in ((3, TypeError), ([3], TypeError)):
        with pytest.raises(error, match="^modules must be"):
            constraint.modules = value
        assert constraint.modules is None
    constraint.modules = "fc"
    assert constraint.modules == ["fc"]
    torch.testing.assert_close(constraint.penalty(model), model.fc.weight.abs().sum())
    constraint.modules = model.out
    assert constraint.modules == [model.out]
    torch.testing.assert_close(constraint.penalty(model), model.out.weight.abs().sum())


def test_l1_sparsity_refuses_a_named_module_without_weights():
    # a named activation or normalisation layer (no weight matrix or kernel: only 1-D
    # parameters or none) had been dropped silently when another named module had weights: the
    # user believed it penalised
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2)
    )
    for named in (["0", "2"], ["1", "4"], [model[0], model[2]]):
        with pytest.raises(ValueError, match=r"modules must .*weight matrices or kernels.*'(1|2)'"):
            L1Sparsity(modules=named).penalty(model)
        with pytest.raises(ValueError, match="modules must"):
            check_constraints_on([L1Sparsity(modules=named)], model)
    # a container is named for the weights it holds; conv kernels are weights
    both = L1Sparsity(modules=["", "0"]).penalty(model)
    torch.testing.assert_close(both, model[0].weight.abs().sum() + model[4].weight.abs().sum())


def test_l1_sparsity_of_a_soft_tree_penalises_its_splits_and_leaves_its_leaves_alone():
    # every 2-D parameter had been penalised by default, the tree's leaf logits among them:
    # they were pulled to zero, every leaf towards a uniform class distribution
    torch.manual_seed(0)
    tree = SoftDecisionTree(in_features=3, num_classes=2, depth=2)
    splits = tree.inner.weight.abs().sum()
    for modules in (None, [""], [tree], ["inner"]):
        tree.zero_grad()
        penalty = L1Sparsity(weight=1.0, modules=modules).penalty(tree)
        torch.testing.assert_close(penalty, splits)
        penalty.backward()
        assert tree.leaf_logits.grad is None
        torch.testing.assert_close(tree.inner.weight.grad, tree.inner.weight.sign())
    # in a student holding a tree, the other layers' weights are penalised as before
    student = nn.Sequential(nn.Linear(4, 3), SoftDecisionTree(in_features=3, num_classes=2))
    torch.testing.assert_close(
        L1Sparsity().penalty(student),
        student[0].weight.abs().sum() + student[1].inner.weight.abs().sum(),
    )
    assert all(p is not student[1].leaf_logits for p in L1Sparsity().parameters_of(student))
    assert tree.split_weights is tree.inner.weight  # the weights named in the docs


def test_a_feature_name_is_looked_up_in_the_student_s_feature_names():
    # a name given for tensor inputs had been refused even where the student (a soft tree built
    # with feature_names) declares which column it names
    torch.manual_seed(0)
    tree = SoftDecisionTree(3, 2, depth=2, feature_names=["a", "b", "c"]).double()
    x = torch.randn(16, 3, dtype=torch.float64)
    # the same values as the column index, point for point
    torch.manual_seed(1)
    by_name = Monotonic("b", n_points=8).penalty(tree, x)
    torch.manual_seed(1)
    by_index = Monotonic(1, n_points=8).penalty(tree, x)
    torch.testing.assert_close(by_name, by_index)
    assert Monotonic("b").name == "monotonic_b"
    torch.testing.assert_close(monotonic_penalty(tree, x, "c"), monotonic_penalty(tree, x, 2))
    assert monotonicity_violations(tree, x, "c") == monotonicity_violations(tree, x, 2)
    # a name the student does not declare, or a student without names, says what to pass
    with pytest.raises(ValueError, match=r"feature must be one of the model's feature_names"):
        Monotonic("z").penalty(tree, x)
    with pytest.raises(ValueError, match=r"column index .*SoftDecisionTree has none\); got 'b'"):
        monotonicity_violations(SoftDecisionTree(3, 2, depth=2).double(), x, "b")


def test_violations_of_a_known_model():
    # f = x0^2: increasing for x0 > 0 and decreasing below
    class Square(nn.Module):
        def forward(self, x):
            return x[:, :1] ** 2

    grid = torch.linspace(-1, 3, 401).unsqueeze(1)
    share_negative = float((grid[:, 0] < 0).float().mean())
    result = monotonicity_violations(Square(), grid, 0, delta=1e-3)
    assert result["gradient"] == pytest.approx(share_negative)
    # pairs (x, x + 1e-3) go down for x < -5e-4
    assert result["pairs"] == pytest.approx(float((grid[:, 0] < -5e-4).float().mean()))
    flipped = monotonicity_violations(Square(), grid, 0, direction=-1, delta=1e-3)
    assert flipped["gradient"] == pytest.approx(float((grid[:, 0] > 0).float().mean()))
    # shares are exact counts over rows (a float32 mean would round them)
    assert result["gradient"] == int((2 * grid[:, 0] < 0).sum()) / 401


def test_a_model_that_does_not_give_one_row_per_input_row_is_refused():
    # an output pooled over the batch ([1, k] or [k] for n rows) had given shares of no
    # meaning ("pairs": 0.1 of 10 rows from one compared value) rather than an error
    class Pooled(nn.Module):
        def __init__(self, keepdim):
            super().__init__()
            self.net, self.keepdim = nn.Linear(3, 2), keepdim

        def forward(self, x):
            out = self.net(x).mean(0, keepdim=self.keepdim)
            return out if self.keepdim else out[:1]

    x = torch.randn(10, 3)
    for keepdim in (True, False):
        with pytest.raises(ValueError, match=r"model must return one row per input row \(10\)"):
            monotonicity_violations(Pooled(keepdim), x, 0)
        with pytest.raises(ValueError, match="model must return one row per input row"):
            Monotonic(0, n_points=0).penalty(Pooled(keepdim), x)


def test_the_default_delta_is_read_in_full_precision():
    # a float16 feature spanning [-40000, 40000]: its range overflowed float16, so the default
    # delta (5% of it) was infinite and refused as "delta must be a finite number", a delta
    # the caller had not given
    model = nn.Linear(2, 1).half()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1e-4, 0.0]]))
        model.bias.zero_()
    grid = torch.zeros(11, 2, dtype=torch.float16)
    grid[:, 0] = torch.linspace(-40000, 40000, 11)
    assert monotonicity_violations(model, grid, 0) == {"gradient": 0.0, "pairs": 0.0}
    # an X that requires grad: the range is read without autograd (no warning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monotonicity_violations(nn.Linear(2, 1), torch.randn(8, 2).requires_grad_(), 0)


def test_violations_of_a_piecewise_constant_model():
    # a soft tree read by its most probable leaf (the paper's test-time prediction) has no
    # autograd path from the inputs to its output: the check had failed with torch's "appears to
    # not have been used in the graph"; its derivative is zero (never of the wrong sign) and
    # the pairs read the steps
    from lightning_distill.kd.soft_tree import SoftDecisionTree

    torch.manual_seed(0)
    tree = SoftDecisionTree(2, 2, depth=1, output="max_leaf", inverse_temperature=5.0)
    with torch.no_grad():
        tree.inner.weight.copy_(torch.tensor([[1.0, 0.0]]))
        tree.inner.bias.zero_()
        tree.leaf_logits.copy_(torch.tensor([[0.0, 0.0], [-1.0, 0.0]]))  # class 0 falls right
    grid = torch.zeros(20, 2)
    grid[:, 0] = torch.linspace(-1, 1, 20)
    result = monotonicity_violations(tree, grid, 0, delta=0.5)
    # pairs go from the left leaf to the right one (class 0's log-probability falls) for
    # -0.5 < x0 < 0 (strictly wrong way, direction +1)
    crossing = float(((grid[:, 0] < 0) & (grid[:, 0] + 0.5 > 0)).sum()) / 20
    assert result == {"gradient": 0.0, "pairs": crossing} and crossing > 0
    # the penalty reads the same zero slope: every row misses a margin of 0.1 by 0.1
    penalty = Monotonic(0, margin=0.1, n_points=0).penalty(tree, grid)
    torch.testing.assert_close(penalty, torch.tensor(0.01))

    class Stepped(nn.Module):  # no parameters, no autograd path at all
        def forward(self, x):
            return -torch.floor(x[:, 0]).detach()

    result = monotonicity_violations(Stepped(), grid, 0, delta=0.5)
    assert result["gradient"] == 0.0 and result["pairs"] > 0


def test_violations_inside_no_grad_and_inference_mode():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -3.0]]))
    grid = torch.randn(50, 2)
    expected = {"gradient": 1.0, "pairs": 1.0}
    with torch.no_grad():
        assert monotonicity_violations(model, grid, 1) == expected
    with torch.inference_mode():
        assert monotonicity_violations(model, torch.randn(50, 2), 1) == expected
    assert not model.weight.is_inference()


def test_penalty_leaves_a_batch_s_dtypes_to_the_model():
    # a model may cast its inputs itself (a float64 feature read as float32), or not read an
    # entry at all: the penalty checks finiteness only, not the batch's dtypes
    class Casting(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Linear(1, 2)

        def forward(self, inputs):
            return self.net(inputs["income"].float().unsqueeze(1))

    batch = {
        "income": torch.rand(8, dtype=torch.float64),
        "unused": torch.rand(8, dtype=torch.float64),
    }
    value = Monotonic("income", output=1).penalty(Casting(), batch)
    assert bool(torch.isfinite(value))


def test_violations_refuse_nan_rows_other_dtypes_and_nan_outputs():
    grid = torch.linspace(-1, 1, 21).unsqueeze(1)
    nan_grid = grid.clone()
    nan_grid[:5] = float("nan")
    with pytest.raises(ValueError, match="X must be finite"):
        monotonicity_violations(nn.Linear(1, 1), nan_grid, 0)
    with pytest.raises(
        TypeError, match="X must have the model's dtype torch.float32; got torch.float64"
    ):
        monotonicity_violations(nn.Linear(1, 1), grid.double(), 0)

    class Log(nn.Module):  # NaN below zero
        def forward(self, x):
            return torch.log(x)

    with pytest.raises(ValueError, match="model must give finite outputs"):
        monotonicity_violations(Log(), grid, 0)


def test_violations_restore_modes():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    model.train()
    model[1].eval()
    stats = model[1].running_mean.clone()
    monotonicity_violations(model, torch.randn(20, 3), 0)
    assert model.training and model[0].training and not model[1].training
    assert torch.equal(model[1].running_mean, stats)


class _NoisyInput(nn.Module):
    """Adds input noise in training; its own train() switches the noise with the mode."""

    def __init__(self, in_features=3, out_features=2):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.noise = 0.1

    def train(self, mode=True):
        super().train(mode)
        self.noise = 0.1 if mode else 0.0
        return self

    def forward(self, x):
        return self.linear(x + self.noise * torch.randn_like(x))


@pytest.mark.parametrize(
    "check",
    [
        lambda model, x: monotonicity_violations(model, x, 0),
        lambda model, x: monotonic_penalty(model, x, 0, margin=10.0),
        lambda model, x: Monotonic(0, margin=10.0, n_points=8).penalty(model, x),
    ],
    ids=["violations", "monotonic_penalty", "Monotonic"],
)
def test_a_module_s_own_train_is_given_back_its_mode(check):
    # evaluated in eval mode through the module's own train(False), which turns its noise
    # off; restoring the flags alone left the noise off while the module read as training
    torch.manual_seed(0)
    x = torch.rand(16, 3)
    model = _NoisyInput().train()
    check(model, x)
    assert model.training and model.noise == 0.1
    # inside a network: the root's mode first, then each module's own (one left in eval)
    network = nn.Sequential(_NoisyInput(), _NoisyInput(2, 2), nn.Linear(2, 1)).train()
    network[1].eval()
    check(network, x)
    assert [m.training for m in network] == [True, False, True]
    assert (network[0].noise, network[1].noise) == (0.1, 0.0)
    # a module in evaluation mode stays there, noise off
    model.eval()
    check(model, x)
    assert not model.training and model.noise == 0.0


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: Monotonic(0, direction=0), ValueError, r"direction must be \+1 or -1; got 0\."),
        (lambda: Monotonic(0, direction=2), ValueError, r"direction must be \+1 or -1; got 2\."),
        # the wrong type (a bool, a str, a tensor of several elements): TypeError
        (lambda: Monotonic(0, True), TypeError, r"direction must be \+1 or -1; got True\."),
        (lambda: Monotonic(0, direction=torch.tensor([1, -1])), TypeError, "direction must be"),
        (lambda: Monotonic(0, direction="1"), TypeError, r"direction must be .*; got '1'\."),
        (lambda: Monotonic(0, direction=0.5), ValueError, r"direction must be .*; got 0\.5\."),
        (lambda: Monotonic(-1), ValueError, r"feature must be a column index >= 0; got -1\."),
        (lambda: Monotonic(1.5), TypeError, "feature must be a column index"),
        (lambda: Monotonic(0, weight=-1.0), ValueError, "weight must be"),
        (lambda: Monotonic(0, margin=-0.1), ValueError, "margin must be"),
        (lambda: Monotonic(0, quantity="prob"), ValueError, "quantity must be one of"),
        (lambda: Monotonic(0, name="a b"), TypeError, "name must be"),
        (lambda: L1Sparsity(weight=float("nan")), ValueError, "weight must be"),
        (lambda: L1Sparsity(modules=[3]), TypeError, "modules must be"),
        # not a collection at all: had been Python's "'int' object is not iterable"
        (lambda: L1Sparsity(modules=3), TypeError, r"modules must be .*; got 3\."),
        (lambda: L1Sparsity(modules=nn.Linear), TypeError, "modules must be"),  # the class
    ],
)
def test_bad_construction(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_a_one_element_tensor_gives_the_direction():
    assert Monotonic(0, direction=torch.tensor(-1)).direction == -1
    assert Monotonic(0, direction=torch.tensor([1.0])).direction == 1


def test_a_dict_key_of_any_characters_names_the_default_constraint():
    # a key such as "late-payments" (dict batches take any str key) is a valid feature
    assert Monotonic("late-payments").name == "monotonic_late_payments"
    assert Monotonic("income").name == "monotonic_income" and Monotonic(3).name == "monotonic_3"


def test_bad_inputs_at_penalty_time():
    model = _mlp(dtype=torch.float32)
    x = torch.randn(8, 4)
    with pytest.raises(ValueError, match=r"feature must be an integer >= 0 and <= 3; got 4\."):
        Monotonic(4).penalty(model, x)
    with pytest.raises(ValueError, match="feature must be a column index for tensor inputs"):
        Monotonic("income").penalty(model, x)
    with pytest.raises(TypeError, match="inputs must be a floating-point tensor"):
        Monotonic(0).penalty(model, torch.ones(8, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="output must be an integer >= 0 and <= 1; got 5"):
        Monotonic(0, output=5).penalty(model, x)
    with pytest.raises(ValueError, match=r"modules must be .*'nope'|nope"):
        L1Sparsity(modules=["nope"]).penalty(model)
    with pytest.raises(ValueError, match="direction must be"):
        monotonicity_violations(model, x, 0, direction=0)
    with pytest.raises(ValueError, match="delta must be"):
        monotonicity_violations(model, x, 0, delta=0.0)
    with pytest.raises(TypeError, match="X must be a floating-point"):
        monotonicity_violations(model, x.long(), 0)
    with pytest.raises(TypeError, match=r"X must be a torch.Tensor \[batch, features\]"):
        monotonicity_violations(model, x.numpy(), 0)
    with pytest.raises(ValueError, match=r"model could not be run on inputs of shape \(8, 6\)"):
        monotonicity_violations(model, torch.randn(8, 6), 0)


def _full_penalty(model, points, feature, output, direction, margin):
    points = points.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(points)[:, output].sum(), points, create_graph=True)
    return torch.relu(margin - direction * grad[:, feature]).square().mean()


class _Residual(nn.Module):
    """Not a plain chain: takes the reverse-mode path."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x) + x[:, :1]


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("chain", [False, True])
def test_penalty_gradient_equals_the_full_second_order_pass_in_eval_mode(batch_norm, chain):
    import copy

    from lightning_distill.kd.constraints import _chain_layers

    torch.manual_seed(6)
    layers = (
        [nn.Linear(4, 16)]
        + ([nn.BatchNorm1d(16)] if batch_norm else [])
        + [nn.Tanh(), nn.Dropout(0.5), nn.Linear(16, 2)]
    )
    body = nn.Sequential(*layers).double()
    if batch_norm:  # running statistics far from the batch's, so that the modes differ
        body[1].running_mean.uniform_(-1, 1)
        body[1].running_var.uniform_(0.5, 2.0)
        body[1].weight.data.uniform_(0.5, 1.5)
    model = (body if chain else _Residual(body)).train()
    points = torch.randn(300, 4, dtype=torch.float64)
    deployed = copy.deepcopy(model).eval()
    assert (_chain_layers(deployed) is not None) == chain
    reference = _full_penalty(deployed, points, 1, 0, 1, 0.2)
    expected = torch.autograd.grad(
        reference, list(deployed.parameters()), allow_unused=True, materialize_grads=True
    )
    state = {k: v.clone() for k, v in model.state_dict().items()}
    penalty = monotonic_penalty(model, points, 1, output=0, direction=1, margin=0.2)
    got = torch.autograd.grad(
        penalty, list(model.parameters()), allow_unused=True, materialize_grads=True
    )
    torch.testing.assert_close(penalty, reference)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    assert all(m.training for m in model.modules())  # modes restored
    for key, value in model.state_dict().items():  # running statistics not updated
        assert torch.equal(value, state[key]), key


def test_batch_norm_without_running_statistics_is_refused():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8, track_running_stats=False))
    with pytest.raises(ValueError, match="batch normalisation without running statistics"):
        monotonic_penalty(model, torch.randn(16, 4), 0)
    assert model.training
    # the check reads each row's derivative alike: the batch's statistics would mix the rows
    # (raising the feature in every row moves nothing; the pairs read rounding)
    with pytest.raises(ValueError, match="batch normalisation without running statistics"):
        monotonicity_violations(model, torch.randn(16, 4), 0)
    assert model.training


def test_an_empty_batch_is_refused_by_the_constraint():
    with pytest.raises(ValueError, match="inputs must be a batch of at least one row"):
        Monotonic(0).penalty(nn.Linear(3, 1), torch.zeros(0, 3))


@pytest.mark.parametrize("chain", [False, True])
@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_penalty_under_no_grad_is_the_value_without_a_graph(chain, context):
    torch.manual_seed(7)
    body = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    model = body if chain else _Residual(body)
    points = torch.randn(64, 4)
    expected = monotonic_penalty(model, points, 1, margin=0.5)
    with getattr(torch, context)():
        value = monotonic_penalty(model, points, 1, margin=0.5)
    assert not value.requires_grad
    torch.testing.assert_close(value, expected.detach())


def test_penalty_is_a_constant_zero_when_every_row_meets_the_margin():
    model = _MonotoneWithMargin()
    penalty = monotonic_penalty(model, torch.randn(10, 4), 0, margin=1.0)
    assert float(penalty) == 0.0 and not penalty.requires_grad


def _reference_penalty(model, points, feature, output, direction, margin, quantity):
    """The formula by a full second-order autograd pass over every row."""
    points = points.clone().requires_grad_(True)
    out = model(points)
    if quantity == "log_probability":
        out = out.log_softmax(1)
    (grad,) = torch.autograd.grad(out[:, output].sum(), points, create_graph=True)
    return torch.relu(margin - direction * grad[:, feature]).square().mean()


def _chains():
    nested = nn.Sequential(nn.Linear(4, 12), nn.Sequential(nn.Tanh(), nn.Linear(12, 12)))
    return {
        "relu": [nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)],
        "inplace_relu": [nn.Linear(4, 16), nn.ReLU(inplace=True), nn.Linear(16, 3)],
        "leaky": [nn.Linear(4, 16), nn.LeakyReLU(0.1), nn.Linear(16, 3)],
        # an activation's output read by the next one (the pass works in place on a layer's
        # own outputs only)
        "relu_relu_leaky": [
            nn.Linear(4, 16),
            nn.ReLU(),
            nn.ReLU(),
            nn.LeakyReLU(0.0),
            nn.Linear(16, 3),
        ],
        "tanh_sigmoid": [
            nn.Linear(4, 16),
            nn.Tanh(),
            nn.Linear(16, 8),
            nn.Sigmoid(),
            nn.Linear(8, 3),
        ],
        "identity_dropout": [
            nn.Identity(),
            nn.Linear(4, 16),
            nn.Dropout(0.0),
            nn.ReLU(),
            nn.Linear(16, 3),
        ],
        "nested": [nested, nn.ReLU(), nn.Linear(12, 3)],
        "linear": [nn.Linear(4, 3)],
        # the first Linear's column passes a second Linear before an activation
        "stacked_linear": [nn.Linear(4, 16), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)],
    }


@pytest.mark.parametrize("chain", sorted(_chains()))
@pytest.mark.parametrize("quantity", ["logit", "log_probability"])
def test_chain_penalty_and_gradient_equal_the_second_order_pass(chain, quantity):
    from lightning_distill.kd.constraints import _chain_layers, _chain_slopes

    torch.manual_seed(11)
    model = nn.Sequential(*_chains()[chain]).double()
    assert _chain_layers(model) is not None  # the forward-carried derivative is what is tested
    # 600 rows: a narrow layer (the head's 3 outputs, the 8 of stacked_linear) on 512 rows or
    # more is computed as a transposed product
    points = torch.randn(600, 4, dtype=torch.float64)
    slopes = _chain_slopes(_chain_layers(model), points, 1, 2, quantity).detach()
    margin = float(slopes.abs().median()) if chain != "linear" else float(slopes[0].abs()) + 0.1
    shares, params = [], list(model.parameters())
    for direction in (1, -1):
        shares.append(float(((margin - direction * slopes) > 0).double().mean()))
        reference = _reference_penalty(model, points, 1, 2, direction, margin, quantity)
        expected = torch.autograd.grad(reference, params, allow_unused=True, materialize_grads=True)
        penalty = monotonic_penalty(
            model, points, 1, output=2, direction=direction, margin=margin, quantity=quantity
        )
        got = torch.autograd.grad(penalty, params, allow_unused=True, materialize_grads=True)
        torch.testing.assert_close(penalty, reference)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b)
    # some rows violate the margin and others not: the violating rows alone were kept
    assert chain == "linear" or any(0 < share < 1 for share in shares), shares


@pytest.mark.parametrize("quantity", ["logit", "log_probability"])
def test_chain_penalty_of_a_one_input_model_leaves_its_weights_alone(quantity):
    # one input column: the first Linear's column is a view of its weight, not a copy
    torch.manual_seed(12)
    model = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    model = model.double()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    points = torch.linspace(-3, 3, 600, dtype=torch.float64)[:, None]
    reference = _reference_penalty(model, points, 0, 1, 1, 0.5, quantity)
    expected = torch.autograd.grad(reference, list(model.parameters()), materialize_grads=True)
    penalty = monotonic_penalty(model, points, 0, output=1, margin=0.5, quantity=quantity)
    got = torch.autograd.grad(penalty, list(model.parameters()), materialize_grads=True)
    torch.testing.assert_close(penalty, reference)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("quantity", ["logit", "log_probability"])
def test_chain_penalty_through_batch_norm_after_an_activation(affine, quantity):
    """Batch normalisation (running statistics) on row-wise tangents, with and without its
    own weight and bias: value and gradients equal the second-order pass."""
    from lightning_distill.kd.constraints import _chain_layers

    torch.manual_seed(13)
    norm = nn.BatchNorm1d(16, affine=affine)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), norm, nn.Sigmoid(), nn.Linear(16, 3)
    ).double()
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2.0)
    if affine:
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    assert _chain_layers(model) is not None
    points = torch.randn(300, 4, dtype=torch.float64)
    params = list(model.parameters())
    reference = _reference_penalty(model, points, 2, 1, -1, 0.05, quantity)
    expected = torch.autograd.grad(reference, params, allow_unused=True, materialize_grads=True)
    penalty = monotonic_penalty(
        model, points, 2, output=1, direction=-1, margin=0.05, quantity=quantity
    )
    got = torch.autograd.grad(penalty, params, allow_unused=True, materialize_grads=True)
    # every parameter but the last bias (a logit's slope does not read it) moves the penalty
    assert 0 < float(reference.detach()) and all(float(g.abs().sum()) > 0 for g in expected[:-1])
    torch.testing.assert_close(penalty, reference)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_chain_penalty_of_frozen_layers_trains_the_others():
    """A frozen layer gets no gradient; the layers around it get theirs."""
    torch.manual_seed(14)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    model[0].requires_grad_(False)
    points = torch.randn(200, 4, dtype=torch.float64)
    reference = _reference_penalty(model, points, 0, 0, 1, 0.3, "log_probability")
    penalty = monotonic_penalty(model, points, 0, output=0, margin=0.3, quantity="log_probability")
    penalty.backward()
    expected = torch.autograd.grad(reference, [model[2].weight, model[2].bias])
    assert model[0].weight.grad is None and model[0].bias.grad is None
    torch.testing.assert_close(model[2].weight.grad, expected[0])
    torch.testing.assert_close(model[2].bias.grad, expected[1])


def test_chain_penalty_refuses_a_second_derivative():
    """The hand-written backward is first order: a graph of the gradient is refused (its
    operations would leave out terms), and the reverse-mode path offers it."""
    body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    points = torch.randn(32, 4)
    penalty = monotonic_penalty(body, points, 0, margin=10.0)
    with pytest.raises(RuntimeError, match="second derivative through it"):
        torch.autograd.grad(penalty, body[0].weight, create_graph=True)
    penalty = monotonic_penalty(_Residual(body), points, 0, margin=10.0)
    (grad,) = torch.autograd.grad(penalty, body[0].weight, create_graph=True)
    assert grad.requires_grad


def test_chain_penalty_under_autocast_trains_in_mixed_precision():
    """Under torch.autocast (Lightning's "bf16-mixed"), the activations are of lower precision
    and the weights full: the penalty takes the autograd chain path, whose backward runs."""
    torch.manual_seed(15)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3)
    )
    points = torch.randn(256, 4)
    for quantity in ("logit", "log_probability"):
        reference = monotonic_penalty(model, points, 1, output=2, margin=0.3, quantity=quantity)
        params = list(model.parameters())
        expected = torch.autograd.grad(reference, params, allow_unused=True, materialize_grads=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            penalty = monotonic_penalty(model, points, 1, output=2, margin=0.3, quantity=quantity)
        got = torch.autograd.grad(penalty, params, allow_unused=True, materialize_grads=True)
        torch.testing.assert_close(penalty.float(), reference, rtol=0.05, atol=1e-3)
        for a, b in zip(got, expected):
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, b, rtol=0.1, atol=0.02)


def test_chain_penalty_frees_what_it_kept_after_the_backward_pass():
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    penalty = monotonic_penalty(model, torch.randn(64, 4), 0, margin=10.0)
    chain = penalty.grad_fn  # the chain's node divides by the rows itself
    assert type(chain).__name__ == "_ChainPenaltyBackward"
    assert len(chain.saved_tensors) > 6  # parameters and the violating rows' values
    penalty.backward()
    with pytest.raises(RuntimeError, match="freed"):
        chain.saved_tensors


def test_chain_penalty_reads_batch_norm_statistics_of_its_forward_pass():
    """A forward pass in training mode between the penalty and its backward pass moves the
    running statistics: the gradient is the one of the penalty as computed."""
    torch.manual_seed(16)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 2))
    model = model.double().eval()
    model[1].running_var.uniform_(0.5, 2.0)
    points = torch.randn(200, 4, dtype=torch.float64)
    params = list(model.parameters())
    reference = _reference_penalty(model, points, 0, 1, 1, 0.5, "log_probability")
    expected = torch.autograd.grad(reference, params)
    penalty = monotonic_penalty(model, points, 0, output=1, margin=0.5, quantity="log_probability")
    model.train()(torch.randn(32, 4, dtype=torch.float64) * 3 + 2)  # the statistics move
    got = torch.autograd.grad(penalty, params)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_constraint_settings_changed_after_construction_are_checked():
    constraint = Monotonic(0, margin=0.1)
    model, x = nn.Sequential(nn.Linear(3, 2)), torch.randn(8, 3)
    for name, value, match in (
        ("margin", -1.0, "margin must be"),
        ("quantity", "probability", "quantity must be one of"),
        ("direction", 2, "direction must be"),
        ("n_points", -5, "n_points must be"),
    ):
        original = getattr(constraint, name)
        setattr(constraint, name, value)
        with pytest.raises((ValueError, TypeError), match=match):
            constraint.penalty(model, x)
        setattr(constraint, name, original)


def test_chain_penalty_of_points_made_under_inference_mode_is_differentiable():
    torch.manual_seed(17)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.inference_mode():
        made = torch.randn(64, 4)
    points = made.clone()
    expected = torch.autograd.grad(monotonic_penalty(model, points, 0, margin=1.0), model[0].weight)
    got = torch.autograd.grad(monotonic_penalty(model, made, 0, margin=1.0), model[0].weight)
    torch.testing.assert_close(got, expected)


def test_only_plain_chains_take_the_forward_carried_derivative():
    from lightning_distill.kd.constraints import _chain_layers

    class Custom(nn.Sequential):
        pass

    dropout = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    not_chains = [
        Custom(nn.Linear(4, 2)),
        nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2)),
        nn.Sequential(nn.ReLU(), nn.Linear(4, 2)),  # an activation on the inputs themselves
        nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(-0.5), nn.Linear(8, 2)),
        nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)),
        nn.Sequential(nn.Linear(4, 8), Custom(nn.ReLU()), nn.Linear(8, 2)),
        dropout,
        nn.Linear(4, 2),
    ]
    for model in not_chains:
        assert _chain_layers(model) is None, model
    assert _chain_layers(dropout.eval()) is not None


def test_chain_penalty_reads_pruned_weights():
    from lightning_distill.kd.constraints import _chain_layers

    torch.manual_seed(12)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)).double()
    torch.nn.utils.prune.l1_unstructured(model[0], "weight", amount=0.5)
    assert _chain_layers(model) is not None  # pruning's weight hook keeps the chain
    points = torch.randn(50, 4, dtype=torch.float64)
    reference = _reference_penalty(model, points, 0, 1, 1, 0.5, "logit")
    torch.testing.assert_close(monotonic_penalty(model, points, 0, output=1, margin=0.5), reference)
    # a model made flat (no row violates a margin of 0): the screen alone ran,
    # and the weight pruning's hook set during it stays usable by autograd
    with torch.no_grad():
        model[2].weight.zero_()
    assert float(monotonic_penalty(model, points, 0, output=1)) == 0.0
    inputs = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.linear(inputs, model[0].weight).sum().backward()
    assert inputs.grad is not None


@pytest.mark.parametrize("hook", ["weight_norm", "spectral_norm", "prune"])
def test_chain_with_weight_hook_cast_after_the_hook_takes_points_of_its_new_dtype(hook):
    # the hook makes the weight attribute at each call: after .double() it is float32 until
    # the layer runs again, while the model's parameters are float64
    torch.manual_seed(14)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    if hook == "prune":
        torch.nn.utils.prune.l1_unstructured(model[0], "weight", amount=0.5)
    else:
        getattr(nn.utils, hook)(model[0])
    # evaluation mode: the penalty's own (spectral norm's power iteration runs in training only)
    model = model.double().eval()
    assert model[0].weight.dtype == torch.float32  # stale until the next call
    points = torch.randn(40, 4, dtype=torch.float64)
    got = monotonic_penalty(model, points, 0, output=1, margin=1.0)
    assert got.dtype == torch.float64
    reference = _reference_penalty(model, points, 0, 1, 1, 1.0, "logit")
    torch.testing.assert_close(got, reference)
    with pytest.raises(TypeError, match="model's dtype torch.float64; got torch.float32"):
        monotonic_penalty(model, points.float(), 0)


def _hooked_models():
    """Chains whose calls run something that changes values: each must leave the chain."""

    def chain():
        torch.manual_seed(13)
        return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3)).double()

    outer_pre, outer_post, layer_pre, layer_post, instance = (chain() for _ in range(5))
    outer_pre.register_forward_pre_hook(lambda module, args: (args[0] * 3.0,))
    outer_post.register_forward_hook(lambda module, args, out: out * 3.0)
    layer_pre[2].register_forward_pre_hook(lambda module, args: (args[0] * 2.0,))
    layer_post[1].register_forward_hook(lambda module, args, out: out * 2.0)
    instance[1].forward = torch.nn.functional.gelu
    torch.manual_seed(13)
    nested = nn.Sequential(nn.Linear(4, 12), nn.Sequential(nn.Tanh(), nn.Linear(12, 3))).double()
    nested[1].register_forward_hook(lambda module, args, out: -out)
    return {
        "outer_pre": outer_pre,
        "outer_post": outer_post,
        "layer_pre": layer_pre,
        "layer_post": layer_post,
        "instance_forward": instance,
        "nested": nested,
    }


@pytest.mark.parametrize("case", sorted(_hooked_models()))
def test_hooks_that_change_values_take_the_exact_path(case):
    from lightning_distill.kd.constraints import _chain_layers

    model = _hooked_models()[case]
    assert _chain_layers(model) is None
    points = torch.randn(200, 4, dtype=torch.float64)
    reference = _reference_penalty(model, points, 0, 1, 1, 0.5, "logit")
    params = list(model.parameters())
    penalty = monotonic_penalty(model, points, 0, output=1, margin=0.5)
    torch.testing.assert_close(penalty, reference)
    unused = {"allow_unused": True, "materialize_grads": True}
    got = torch.autograd.grad(penalty, params, **unused)
    for a, b in zip(got, torch.autograd.grad(reference, params, **unused)):
        torch.testing.assert_close(a, b)


def test_global_hooks_take_the_exact_path():
    from lightning_distill.kd.constraints import _chain_layers

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert _chain_layers(model) is not None
    handle = torch.nn.modules.module.register_module_forward_pre_hook(lambda m, args: None)
    try:
        assert _chain_layers(model) is None
    finally:
        handle.remove()
    assert _chain_layers(model) is not None


def test_points_with_a_graph_pass_no_gradient_back():
    torch.manual_seed(14)
    encoder = nn.Linear(4, 4).double()
    points = encoder(torch.randn(100, 4, dtype=torch.float64))
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    penalty = monotonic_penalty(model, points, 0, margin=1.0)
    assert float(penalty.detach()) > 0
    penalty.backward()
    assert encoder.weight.grad is None and model[0].weight.grad is not None


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_points_are_refused(value):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    points = torch.randn(20, 4)
    points[3, 2] = value
    with pytest.raises(ValueError, match="inputs must be finite; got NaN or infinite values"):
        monotonic_penalty(model, points, 0)
    with pytest.raises(ValueError, match="inputs must be finite"):
        Monotonic(0).penalty(model, points)


@pytest.mark.parametrize("chain", [False, True])
def test_log_probability_of_a_single_output_column_is_refused(chain):
    body = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    model = body if chain else _Residual(body)
    x = torch.rand(50, 3)
    pattern = "quantity must be 'logit' for a model with one output column"
    with pytest.raises(ValueError, match=pattern):
        monotonic_penalty(model, x, 0, quantity="log_probability")
    with pytest.raises(ValueError, match=pattern):
        monotonicity_violations(model, x, 0, quantity="log_probability")
    assert set(monotonicity_violations(model, x, 0, quantity="logit")) == {"gradient", "pairs"}


def test_penalty_on_points_of_another_dtype_says_so_for_chains_too():
    # a plain nn.Sequential takes the forward-carried path, which met torch's raw dtype error
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    points = torch.randn(16, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match="inputs must have the model's dtype torch.float32; got"):
        monotonic_penalty(mlp, points, 0, output=1, margin=0.1)


@pytest.mark.parametrize("outputs", [1, 2, 10, 11])
@pytest.mark.parametrize("rows", [100, 600])
@pytest.mark.parametrize("bias", [True, False])
def test_chain_linear_equals_torch_linear_in_value_and_gradient(outputs, rows, bias):
    from lightning_distill.kd.constraints import _linear

    torch.manual_seed(outputs + rows)
    layer = nn.Linear(16, outputs, bias=bias).double()
    h = torch.randn(16, rows, dtype=torch.float64).T.requires_grad_(True)  # a transposed view
    got = _linear(h, layer.weight, layer.bias)
    # an elementwise reference (neither F.linear nor a matrix product), so that the cases
    # _linear leaves to F.linear are checked too
    expected = (h[:, None, :] * layer.weight[None]).sum(-1)
    if bias:
        expected = expected + layer.bias
    torch.testing.assert_close(got, expected)
    upstream = torch.randn_like(expected)
    params = [h, *layer.parameters()]
    for a, b in zip(
        torch.autograd.grad(got, params, upstream), torch.autograd.grad(expected, params, upstream)
    ):
        torch.testing.assert_close(a, b)


def test_chain_penalty_gradient_is_of_the_leaky_slope_of_its_forward_pass():
    # the slope set again between the penalty and its backward pass: the gradient is the one
    # of the penalty as computed
    torch.manual_seed(17)
    model = nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.1), nn.Linear(16, 2)).double()
    points = torch.randn(300, 4, dtype=torch.float64)
    params = list(model.parameters())
    reference = _reference_penalty(model, points, 0, 1, 1, 0.5, "log_probability")
    expected = torch.autograd.grad(reference, params)
    penalty = monotonic_penalty(model, points, 0, output=1, margin=0.5, quantity="log_probability")
    model[1].negative_slope = 0.3
    got = torch.autograd.grad(penalty, params)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


class _Wrapped(nn.Module):
    """A model that is not a plain chain: the reverse-mode path."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("path", ["chain", "reverse_mode", "hooked_chain"])
def test_a_float16_penalty_is_summed_without_overflow(path):
    """A float16 student with a mean squared violation of about 40 over 2,048 rows: the sum of
    squares (about 80,000) is beyond float16's largest value (65,504), and the penalty had been
    infinite; summed in float32, it is the float64 reference's, and so are its gradients."""
    torch.manual_seed(18)
    net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    with torch.no_grad():
        net[0].weight[:, 0] = -3 * torch.rand(16)  # falling in feature 0 where it should rise
        net[2].weight.abs_()
    points = torch.randn(2048, 4)

    def build(dtype):
        model = copy.deepcopy(net).to(dtype)
        if path == "hooked_chain":  # weight pre-hooks: the chain's autograd path
            torch.nn.utils.prune.identity(model[0], "weight")
        return _Wrapped(model) if path == "reverse_mode" else model

    reference_model, model = build(torch.float64), build(torch.float16)
    reference = monotonic_penalty(reference_model, points.double(), 0, margin=5.0)
    penalty = monotonic_penalty(model, points.half(), 0, margin=5.0)
    assert float(reference) * 2048 > 65504  # the sum overflows float16
    assert penalty.dtype == torch.float32
    torch.testing.assert_close(penalty.double(), reference, rtol=1e-3, atol=0)
    reference.backward()
    penalty.backward()
    for expected, got in zip(reference_model.parameters(), model.parameters()):
        if expected.grad is not None:
            torch.testing.assert_close(got.grad.double(), expected.grad, rtol=0.01, atol=0.01)
    # Monotonic sums the batch and its uniform points the same way
    value = Monotonic(0, margin=5.0, n_points=1024).penalty(model, points[:1024].half())
    assert torch.isfinite(value)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_l1_sparsity_of_half_precision_weights_is_summed_in_float32(dtype):
    """100,000 weights of 0.75: the sum (75,000) is beyond float16's largest value (65,504),
    and the penalty had been infinite; bfloat16 had rounded it to 74,752."""
    model = nn.Sequential(nn.Linear(1000, 100), nn.ReLU(), nn.Linear(100, 2))
    with torch.no_grad():
        model[0].weight.fill_(-0.75)
        model[2].weight.fill_(0.5)
    model = model.to(dtype)
    penalty = L1Sparsity(weight=1.0).penalty(model)
    assert penalty.dtype == torch.float32
    assert float(penalty) == 75_000.0 + 100.0  # exact in float32
    penalty.backward()
    assert torch.equal(model[0].weight.grad, torch.full_like(model[0].weight, -1.0))


@pytest.mark.parametrize("hooked", [False, True])
def test_points_of_another_width_are_refused_on_chains_as_on_other_models(hooked):
    # a plain nn.Sequential takes the forward-carried path, which met torch's raw shape error
    from torch.nn.utils import prune

    torch.manual_seed(0)
    chain = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    if hooked:  # a weight pre-hook: the chain's autograd branch
        prune.l1_unstructured(chain[0], "weight", amount=0.5)
    points = torch.randn(6, 5)
    for model in (chain, _Residual(chain)):
        with pytest.raises(ValueError, match=r"could not be run on inputs of shape \(6, 5\)"):
            monotonic_penalty(model, points, 1, margin=0.5)
        # the batch and its 10 uniform points
        with pytest.raises(ValueError, match=r"could not be run on inputs of shape \(16, 5\)"):
            Monotonic(1, margin=0.5, n_points=10).penalty(model, points)


def test_a_model_that_is_not_a_module_is_refused_by_the_penalty():
    model = _mlp(dtype=torch.float32)
    x = torch.randn(8, 4)

    def function(points):
        return model(points)

    for call in (
        lambda: monotonic_penalty(function, x, 0),
        lambda: Monotonic(0).penalty(function, x),
        lambda: monotonicity_violations(function, x, 0),
    ):
        with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module; got <function"):
            call()


def test_a_feature_name_is_looked_up_in_a_submodule_s_feature_names():
    # a student that wraps a soft tree built with feature_names (behind a scaler) had refused
    # a name: only the model passed was asked for its names
    torch.manual_seed(0)
    tree = SoftDecisionTree(3, 2, depth=2, feature_names=["a", "b", "c"]).double()
    student = nn.Sequential(nn.Identity(), tree)
    x = torch.randn(16, 3, dtype=torch.float64)
    torch.manual_seed(1)
    by_name = Monotonic("b", n_points=8).penalty(student, x)
    torch.manual_seed(1)
    by_index = Monotonic(1, n_points=8).penalty(student, x)
    torch.testing.assert_close(by_name, by_index)
    torch.testing.assert_close(monotonic_penalty(student, x, "c"), monotonic_penalty(student, x, 2))
    assert monotonicity_violations(student, x, "a") == monotonicity_violations(student, x, 0)

    # the same names declared twice lend them as once; different ones are refused
    class Sum(nn.Module):
        def __init__(self, first, second):
            super().__init__()
            self.first, self.second = first, second

        def forward(self, inputs):
            return self.first(inputs) + self.second(inputs)

    twice = Sum(copy.deepcopy(tree), tree)
    torch.testing.assert_close(monotonic_penalty(twice, x, "b"), monotonic_penalty(twice, x, 1))
    other = SoftDecisionTree(3, 2, depth=2, feature_names=["x", "y", "z"]).double()
    with pytest.raises(ValueError, match=r"^feature must be .*submodules declare different"):
        monotonic_penalty(Sum(other, tree), x, "b")
    # names of a submodule that does not read the model's columns are refused
    inner = nn.Sequential(nn.Linear(4, 3).double(), tree)
    with pytest.raises(ValueError, match=r"^feature must be .*3 names\) do not name the model"):
        monotonic_penalty(inner, torch.randn(16, 4, dtype=torch.float64), "b")
    # a wrapper without names anywhere still says so
    with pytest.raises(ValueError, match=r"Sequential has none\); got 'b'"):
        monotonic_penalty(nn.Sequential(nn.Identity()), x, "b")

"""Loss gradients and Captum attributions: right values, every mode and flag given back."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_distill.attribution import attribute, loss_gradient
from tests.helpers import NoisyInput


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 3),
    )


def test_loss_gradient_matches_autograd_per_image():
    model = small_cnn().eval()
    x, y = torch.randn(5, 3, 6, 6), torch.tensor([0, 1, 2, 1, 0])
    raw = loss_gradient(model, x, y, reduction="none")
    for n in range(5):
        xn = x[n : n + 1].clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(F.cross_entropy(model(xn), y[n : n + 1]), xn)
        torch.testing.assert_close(raw[n : n + 1], expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss_gradient(model, x, y), raw.norm(dim=1))


@pytest.mark.parametrize("shape", [(5, 6, 6), (5, 12), (5, 2, 12)])
def test_loss_gradient_norm_is_a_magnitude_for_inputs_without_an_image_channel_axis(shape):
    # grayscale [N, H, W] images and signals: the magnitude, as for one channel of [N, 1, H, W]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape[1:])), 3))
    x, y = torch.randn(*shape), torch.tensor([0, 1, 2, 1, 0])
    raw = loss_gradient(model, x, y, reduction="none")
    assert (raw < 0).any()
    torch.testing.assert_close(loss_gradient(model, x, y), raw.abs())
    if len(shape) == 3 and shape[1] == 6:  # the same images with a channel axis: the same map
        torch.testing.assert_close(loss_gradient(model, x[:, None], y), raw.abs())


def test_modes_flags_and_grads_restored_under_no_grad_and_inference():
    model = small_cnn()
    model.train()
    model[1].eval()  # a mixed state must come back as it was
    model[0].weight.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    x, y = torch.randn(4, 3, 6, 6), torch.tensor([0, 1, 2, 0])
    before = x.clone()
    with torch.no_grad():
        a = loss_gradient(model, x, y)
    with torch.inference_mode():
        b = attribute(model, x, y, "Saliency")
        c = attribute(model, x, y, "loss_gradient")
    assert a.abs().sum() > 0 and b.abs().sum() > 0
    torch.testing.assert_close(c.norm(dim=1), a)
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(x, before) and not x.requires_grad


def test_captum_methods_and_callables():
    model = small_cnn().eval()
    x, y = torch.randn(3, 3, 6, 6), torch.tensor([2, 0, 1])
    saliency = attribute(model, x, y, "Saliency")
    xs = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model(xs).gather(1, y[:, None]).sum(), xs)
    torch.testing.assert_close(saliency, expected.abs())
    from captum.attr import IntegratedGradients

    ig = attribute(model, x, y, IntegratedGradients, n_steps=16)
    assert ig.shape == x.shape
    custom = attribute(model, x, y, lambda m, inputs, targets: inputs * 2)
    torch.testing.assert_close(custom, 2 * x)


def test_bad_methods_and_nan():
    model = small_cnn()
    x, y = torch.randn(2, 3, 6, 6), torch.tensor([0, 1])
    # a callable's attributions must be shaped as the inputs, and it takes no Captum kwargs
    with pytest.raises(ValueError, match=r"shaped as inputs, \(2, 3, 6, 6\); got \(2, 108\)"):
        attribute(model, x, y, lambda m, inputs, targets: inputs.flatten(1))
    with pytest.raises(ValueError, match=r"kwargs must be empty for a callable.*n_steps"):
        attribute(model, x, y, lambda m, inputs, targets: inputs, n_steps=8)
    with pytest.raises(ValueError, match="method must be .*Saliency.*got 'Salience'"):
        attribute(model, x, y, "Salience")
    with pytest.raises(ValueError, match="method must be"):
        attribute(model, x, y, "LayerGradCam")
    # names Captum has that are not a method built from the model alone: a wrapper of another
    # method, one that needs a layer; they are not offered, and refused before any work
    for name in ("NoiseTunnel", "GuidedGradCam", "LLMAttribution", "DataLoaderAttribution"):
        with pytest.raises(ValueError, match=f"method must be .*Saliency.*got '{name}'") as info:
            attribute(model, x, y, name)
        assert f"{name}," not in str(info.value).split("got")[0]
    # Captum's base classes attribute nothing; a subclass built from the model alone is fine
    import captum.attr

    with pytest.raises(ValueError, match="method must be"):
        attribute(model, x, y, captum.attr.GradientAttribution)

    class MySaliency(captum.attr.Saliency):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    torch.testing.assert_close(attribute(model, x, y, MySaliency), attribute(model, x, y))
    # a method whose attribute() needs an argument says which
    with pytest.raises(TypeError, match="kwargs must be the arguments Occlusion.attribute needs"):
        attribute(model, x, y, "Occlusion")
    occlusion = attribute(model, x, y, "Occlusion", sliding_window_shapes=(3, 2, 2))
    assert occlusion.shape == x.shape
    with pytest.raises(TypeError, match=r"inputs must be a floating-point .*got torch.uint8"):
        attribute(model, (x * 10).to(torch.uint8), y)
    # a model that cannot read the inputs: torch's complaint, named as the library's
    wide = torch.randn(2, 5, 6, 6)  # five channels for a three-channel convolution
    with pytest.raises(
        ValueError, match=r"attribution by Saliency failed on inputs of shape \(2, 5, 6, 6\)"
    ):
        attribute(model, wide, y)
    with pytest.raises(
        ValueError, match=r"model could not be run on inputs of shape \(2, 5, 6, 6\)"
    ):
        loss_gradient(model, wide, y)

    # out of memory (a RuntimeError subclass) keeps its type, for code that retries smaller
    class Hungry(torch.nn.Module):
        def forward(self, inputs):
            raise torch.OutOfMemoryError("no memory left")

    with pytest.raises(torch.OutOfMemoryError):
        attribute(Hungry(), x, y)
    with pytest.raises(torch.OutOfMemoryError):
        loss_gradient(Hungry(), x, y)
    with pytest.raises(ValueError, match=r"attributions must be finite \(method"):
        attribute(model, x, y, lambda m, inputs, targets: inputs * float("nan"))
    with pytest.raises(TypeError, match="targets must be class indices: an int, a list"):
        loss_gradient(model, x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="reduction must be one of 'norm', 'none'"):
        loss_gradient(model, x, y, reduction="max")


def test_targets_and_outputs_the_model_cannot_pair_are_refused_clearly():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 4, 2, 1])

    class DictOutput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return {"logits": self.net(x)}

    with pytest.raises(
        ValueError, match=r"targets must be class indices in \[0, 4\] .*got values from 1 to 9"
    ):
        attribute(net, x, y * 2 + 1)
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 4\]"):
        loss_gradient(net, x, y + 1)
    with pytest.raises(
        ValueError, match=r"targets must be class indices .*got None for outputs of shape \(4, 5\)"
    ):
        attribute(net, x, None, "Saliency")
    with pytest.raises(
        TypeError, match="model must be a module returning a tensor of logits; got 'dict'"
    ):
        attribute(DictOutput(), x, y)
    with pytest.raises(
        TypeError, match=r"kwargs must be keyword arguments of Saliency.attribute .*\['n_steps'\]"
    ):
        attribute(net, x, y, "Saliency", n_steps=5)
    # one output per input: no targets needed; valid pairs still work, hooks removed after
    one = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1))
    assert attribute(one, x, None).shape == x.shape
    assert attribute(net, x, y, "IntegratedGradients", n_steps=4).shape == x.shape
    assert not net._forward_hooks and not one._forward_hooks


def test_targets_in_captums_forms_give_the_int64_tensors_attributions():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    x = torch.rand(4, 3, 4, 4)
    as_tensor = torch.tensor([2, 0, 1, 2])
    for method in ("Saliency", "loss_gradient"):
        expected = attribute(model, x, as_tensor, method)
        labels = np.array([2, 0, 1, 2])  # labels read from an array
        for targets in (
            [2, 0, 1, 2],
            (2, 0, 1, 2),
            as_tensor.int(),
            as_tensor.to(torch.uint8),
            list(labels),
            labels,
        ):
            assert torch.equal(attribute(model, x, targets, method), expected)
        every = attribute(model, x, torch.full((4,), 1), method)
        assert torch.equal(attribute(model, x, 1, method), every)
        assert torch.equal(attribute(model, x, np.int64(1), method), every)
        assert torch.equal(attribute(model, x, torch.tensor(1), method), every)
    for bad in (
        True,
        [0, 1.5, 0, 0],
        torch.ones(4, dtype=torch.bool),
        torch.zeros(4, 1),
        np.ones(4),
        [np.bool_(True)] * 4,
    ):
        with pytest.raises(TypeError, match="targets must be class indices"):
            attribute(model, x, bad)


def test_a_one_logit_model_has_no_loss_gradient():
    # the cross-entropy of one logit is 0 whatever the input: all-zero maps, scored as chance
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 1))
    x = torch.rand(4, 3, 4, 4)
    with pytest.raises(ValueError, match="model must be logits of at least 2 classes"):
        loss_gradient(model, x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 classes"):
        attribute(model, x, 0, "loss_gradient")
    with pytest.raises(ValueError, match="at least 2 classes"):  # not "indices in [0, 0]"
        loss_gradient(model, x, torch.ones(4, dtype=torch.long))
    assert attribute(model, x, None).abs().sum() > 0  # Saliency of the one output


@pytest.mark.parametrize(
    ("model_dtype", "input_dtype"),
    [
        (torch.float64, torch.float32),
        (torch.float32, torch.float64),
        (torch.float32, torch.bfloat16),
    ],
    ids=["float64-model", "float64-inputs", "bfloat16-inputs"],
)
@pytest.mark.parametrize("method", ["Saliency", "IntegratedGradients", "loss_gradient"])
def test_inputs_in_another_dtype_than_the_model_say_which_cast_to_make(
    model_dtype, input_dtype, method
):
    model = small_cnn().to(model_dtype)
    x, y = torch.randn(2, 3, 6, 6), torch.tensor([0, 2])
    wrong = x.to(input_dtype)
    kept = wrong.clone()
    cast = rf"cast the inputs \(inputs.to\({model_dtype}\)\) or the model \(model.to\({input_dtype}\)\)"
    message = (
        rf"inputs must be in the model's dtype, {model_dtype}; got {input_dtype} inputs: {cast}"
    )
    with pytest.raises(TypeError, match=message):
        attribute(model, wrong, y, method)
    if method == "loss_gradient":
        with pytest.raises(TypeError, match=message):
            loss_gradient(model, wrong, y)
    torch.testing.assert_close(wrong, kept, rtol=0, atol=0)
    # the cast the message names is the one that works: the model's own attributions
    fixed = attribute(model, wrong.to(model_dtype), y, method)
    assert fixed.dtype == model_dtype and fixed.shape == x.shape


def test_a_model_that_casts_its_input_itself_is_not_refused():
    class Widening(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(12, 3).double()

        def forward(self, inputs):
            return self.linear(inputs.flatten(1).double())

    model, x = Widening(), torch.randn(2, 3, 2, 2)
    found = attribute(model, x, torch.tensor([0, 1]))
    # the gradient of the target logit w.r.t. each input: |w[target]|, in the inputs' dtype
    expected = model.linear.weight[[0, 1]].abs().float().reshape(x.shape)
    torch.testing.assert_close(found, expected)


def test_inputs_on_another_device_than_the_model_say_to_move_them():
    model = small_cnn().to("meta")  # a device that every CPU machine has
    x, y = torch.randn(2, 3, 6, 6), torch.tensor([0, 2])
    message = r"inputs must be on the model's device, meta; got inputs on cpu: move the inputs"
    with pytest.raises(ValueError, match=message):
        attribute(model, x, y)
    with pytest.raises(ValueError, match=message):
        loss_gradient(model, x, y)


def test_empty_batches_one_input_permutations_and_convergence_deltas():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    x = torch.rand(3, 3, 4, 4)
    for method in ("Saliency", "IntegratedGradients", "loss_gradient"):
        empty = attribute(model, x[:0], torch.zeros(0, dtype=torch.long), method)
        assert empty.shape == (0, 3, 4, 4)
    with pytest.raises(ValueError, match="at least 2 inputs for FeaturePermutation"):
        attribute(model, x[:1], 0, "FeaturePermutation")
    assert attribute(model, x, 0, "FeaturePermutation").abs().sum() > 0
    for method in ("IntegratedGradients", "DeepLift"):
        with pytest.raises(ValueError, match="without return_convergence_delta=True"):
            attribute(model, x, 0, method, return_convergence_delta=True)
    # False is what Captum does anyway
    attribute(model, x, 0, "IntegratedGradients", return_convergence_delta=False, n_steps=4)


class _Reshaping(nn.Module):
    """LRP's own layers, the reshape in the forward (Captum's LRP has no rule for Flatten)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.relu, self.fc = nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Linear(16, 2)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).flatten(1))


def _public_attributes(model):
    return [sorted(k for k in vars(m) if not k.startswith("_")) for m in model.modules()]


def test_lrp_leaves_the_users_rules_and_nothing_else_on_the_layers():
    from captum.attr import LRP
    from captum.attr._utils.lrp_rules import EpsilonRule

    x, y = torch.rand(3, 3, 4, 4), torch.tensor([0, 1, 0])
    model = _Reshaping().eval()
    rule = EpsilonRule(1e-3)
    model.fc.rule = rule  # the user's choice of rule, as Captum reads it
    before = _public_attributes(model)
    hooks = [len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules()]
    relevance = attribute(model, x, y, "LRP")
    # Captum's own call deletes the user's rule and leaves each layer's activations behind
    assert _public_attributes(model) == before and model.fc.rule is rule
    assert [len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules()] == hooks
    # the same relevance as Captum's, on a copy of the model that carries the same rule
    reference = _Reshaping().eval()
    reference.fc.rule = EpsilonRule(1e-3)
    expected = LRP(reference).attribute(x.clone().requires_grad_(True), target=y)
    torch.testing.assert_close(relevance, expected.detach())
    assert not hasattr(reference.fc, "rule") and hasattr(reference.fc, "activations")


def test_lrp_on_a_layer_without_a_rule_is_explained_and_leaves_no_rules_behind():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2)).eval()
    before = _public_attributes(model)
    with pytest.raises(ValueError, match=r"LRP needs a rule.*Flatten.*x\.flatten\(1\)"):
        attribute(model, torch.rand(3, 3, 4, 4), torch.tensor([0, 1, 0]), "LRP")
    assert _public_attributes(model) == before  # Captum had left its rules on conv and relu


def test_attribution_leaves_what_a_layer_set_itself():
    # a lazy layer sets in_features on its first call: that is the layer's, not Captum's
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(2))
    attribute(model, torch.rand(3, 1, 3, 3), torch.tensor([0, 1, 0]), "Saliency")
    assert model[1].in_features == 9 and model[1].weight.shape == (2, 9)


def test_a_long_title_of_a_narrow_picture_stays_inside_it():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lightning_distill.attribution.plotting import plot_attribution_maps

    torch.manual_seed(0)
    title = "Saliency maps after epoch 1 (from 0); each map scaled to its own maximum"
    figure = plot_attribution_maps(
        torch.rand(2, 3, 16, 16), {"student": torch.rand(2, 3, 16, 16)}, title=title
    )
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(figure).get_renderer()
    (shown,) = [t for t in figure.findobj(Text) if " ".join(t.get_text().split()) == title]
    box = shown.get_window_extent(renderer)  # wrapped, not cut
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width


class _Then(nn.Module):
    """``small_cnn``'s outputs, handed on by ``how``."""

    def __init__(self, how, seed: int = 0):
        super().__init__()
        self.net, self.how = small_cnn(seed), how

    def forward(self, x):
        return self.how(self.net(x))


@pytest.mark.parametrize("method", ["Saliency", "IntegratedGradients", "GuidedBackprop"])
def test_outputs_that_explain_nothing_are_refused_though_their_gradients_are_finite(method):
    # a NaN bias on one class (a diverged run) leaves the input gradients of every logit finite,
    # the NaN one's too: its maps were returned as any others, and scored
    x, y = torch.randn(4, 3, 6, 6), torch.tensor([0, 1, 2, 0])
    model = small_cnn()
    with torch.no_grad():
        model[6].bias[1] = float("nan")
    modes = [m.training for m in model.modules()]
    rows = 4 * 50 if method == "IntegratedGradients" else 4  # IG's forward: n_steps copies
    with pytest.raises(
        ValueError, match=rf"^model must return finite outputs .* {rows} of {rows} rows"
    ):
        attribute(model, x, y, method)
    assert [m.training for m in model.modules()] == modes  # modes given back after the refusal
    assert not model._forward_hooks  # the check leaves no hook behind
    # one row with a +inf, or all -inf, is named alone
    for row in (torch.tensor([0.0, math.inf, 0.0]), torch.full((3,), -math.inf)):
        broken = _Then(lambda logits, row=row: torch.cat([row[None], logits[1:]]))
        with pytest.raises(ValueError, match=rf"for 1 of {rows} rows"):
            attribute(broken, x, y, method)
    # a class masked with -inf is no divergence: the other classes' maps are the unmasked ones
    masked = _Then(lambda logits: logits.index_fill(1, torch.tensor([1]), -math.inf))
    kept = torch.tensor([0, 2, 2, 0])
    torch.testing.assert_close(
        attribute(masked, x, kept, method), attribute(_Then(lambda logits: logits), x, kept, method)
    )
    # one output per input: a NaN one is refused as well
    one = nn.Sequential(small_cnn(), nn.Linear(3, 1))
    with torch.no_grad():
        one[1].bias.fill_(float("nan"))
    with pytest.raises(ValueError, match=rf"^model must return finite outputs .* {rows} of"):
        attribute(one, x, None, method)


def test_baselines_captum_cannot_take_are_named_and_those_it_takes_give_its_maps():
    # Captum asserted (an AssertionError printing both tensors), and a float64 baseline failed
    # inside the model as a dtype clash blamed on the inputs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 4))
    inputs, targets = torch.rand(5, 1, 6, 6), torch.tensor([0, 1, 2, 3, 0])
    weight = model[1].weight.detach().view(4, 1, 6, 6)
    # a linear model's integrated gradients are (x - baseline) * W[y], for every form taken
    for baselines in (0.5, torch.full((1, 1, 6, 6), 0.5), (torch.full((5, 1, 6, 6), 0.5),)):
        maps = attribute(model, inputs, targets, "IntegratedGradients", baselines=baselines)
        torch.testing.assert_close(maps, (inputs - 0.5) * weight[targets])
    with pytest.raises(
        ValueError,
        match=r"baselines must be a number or a tensor shaped as the inputs \(5, 1, 6, 6\) or "
        r"as one input \(1, 1, 6, 6\) for IntegratedGradients; got \(3, 1, 6, 6\)\.$",
    ):
        attribute(model, inputs, targets, "IntegratedGradients", baselines=torch.zeros(3, 1, 6, 6))
    with pytest.raises(ValueError, match=r"baselines must be a batch of reference inputs for "):
        attribute(model, inputs, targets, "GradientShap", baselines=torch.zeros(3, 6, 6))
    for method in ("IntegratedGradients", "FeatureAblation"):
        with pytest.raises(
            TypeError, match=r"baselines must be a tensor in the inputs' dtype, torch.float32"
        ):
            attribute(model, inputs, targets, method, baselines=torch.zeros_like(inputs).double())
    # a distribution of any size is GradientShap's form
    assert (
        attribute(model, inputs, targets, "GradientShap", baselines=torch.zeros(3, 1, 6, 6)).shape
        == inputs.shape
    )


def test_a_modules_own_train_is_given_its_mode_back_after_attributions():
    # only the flags were put back: a module whose own train(False) turned its noise off
    # read as training afterwards but trained without noise from then on
    noisy = NoisyInput()
    model = torch.nn.Sequential(noisy, torch.nn.Flatten(), torch.nn.Linear(4, 3))
    frozen = NoisyInput().eval()  # a submodule the user keeps in eval mode stays there
    model.append(frozen)
    model.train()
    frozen.eval()
    x = torch.randn(2, 1, 2, 2)
    attribute(model, x, torch.tensor([0, 1]), "Saliency")
    assert noisy.training and noisy.std == 0.1
    assert not frozen.training and frozen.std == 0.0
    assert model.training


def test_perturbation_baselines_of_another_batch_size_are_named():
    # Occlusion and FeatureAblation broadcast baselines against the inputs: a batch of another
    # size failed deep in Captum with torch's size complaint
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    inputs, targets = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 0, 1])
    for method, extra in (
        ("Occlusion", {"sliding_window_shapes": (1, 2, 2)}),
        ("FeatureAblation", {}),
    ):
        with pytest.raises(
            ValueError,
            match=rf"baselines must be a number or a tensor with one baseline per input \(4\) or "
            rf"one for all \(1\) on its first axis for {method}, e.g. \(4, 1, 4, 4\) or "
            r"\(1, 1, 4, 4\); got \(10, 1, 4, 4\)\.",
        ):
            attribute(model, inputs, targets, method, baselines=torch.zeros(10, 1, 4, 4), **extra)
        # one per input, one for all, or one input's shape are Captum's forms
        for baselines in (torch.zeros(4, 1, 4, 4), torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4)):
            maps = attribute(model, inputs, targets, method, baselines=baselines, **extra)
            assert maps.shape == inputs.shape


@pytest.mark.parametrize("method", ["KernelShap", "Lime"])
def test_a_method_that_draws_explains_each_input_with_its_own_extra_forward_arguments(method):
    # attribute_indexed explains each input alone; an extra forward argument with one entry
    # per input of the batch reached every one-input call whole (Captum's AssertionError, or
    # with a bare tensor its rows unpacked as so many arguments)
    from lightning_distill.attribution.methods import attribute_indexed

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))

        def forward(self, x, scale, offset):
            return self.base(x * scale.reshape(-1, 1, 1, 1)) + offset

    torch.manual_seed(0)
    model = Scaled()
    inputs = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    targets = torch.arange(6) % 3
    scales = 0.5 + torch.rand(6, generator=torch.Generator().manual_seed(1))
    offset = torch.ones(1, 3)  # one entry for all inputs: given whole to each
    kwargs = {"n_samples": 6, "additional_forward_args": (scales, offset)}
    whole = attribute_indexed(model, inputs, targets, method, range(6), **kwargs)
    alone = []
    for i in range(6):
        one = range(i, i + 1)
        arguments = (scales[i : i + 1], offset)
        maps = attribute_indexed(
            model, inputs[one], targets[one], method, one, n_samples=6,
            additional_forward_args=arguments,
        )  # fmt: skip
        alone.append(maps)
    assert torch.equal(whole, torch.cat(alone))
    # a different scale changes the map: each input was explained with its own
    other = attribute_indexed(
        model, inputs, targets, method, range(6), n_samples=6,
        additional_forward_args=(scales.flip(0), offset),
    )  # fmt: skip
    assert not torch.equal(whole, other)


def test_shapley_value_sampling_attributes_a_batch_at_once_with_the_same_maps_in_any_batch():
    # its permutations are drawn once per call whatever the inputs: a call per input had made
    # as many passes of one input each (about 45 times slower on 64 inputs of 64 features)
    from lightning_distill.attribution.methods import attribute_indexed

    class Sizes(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2))
            self.sizes = []

        def forward(self, x):
            self.sizes.append(len(x))
            return self.base(x)

    torch.manual_seed(0)
    model = Sizes()
    inputs = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    targets = torch.arange(6) % 2
    whole = attribute_indexed(model, inputs, targets, "ShapleyValueSampling", range(6), n_samples=2)
    assert set(model.sizes) == {6}  # the batch in every pass
    parts = [
        attribute_indexed(
            model, inputs[part], targets[part], "ShapleyValueSampling", range(6)[part], n_samples=2
        )
        for part in (slice(0, 4), slice(4, 6))
    ]
    assert torch.equal(whole, torch.cat(parts))
    # another stream draws other permutations; the caller's random state is given back
    state = torch.random.get_rng_state()
    other = attribute_indexed(
        model, inputs, targets, "ShapleyValueSampling", range(6), stream=1, n_samples=2
    )
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not torch.equal(whole, other)
    # a feature mask of one entry per input sets a call's number of features: each input alone
    masks = torch.arange(16).reshape(1, 1, 4, 4).repeat(6, 1, 1, 1) // (
        1 + torch.arange(6)
    ).reshape(6, 1, 1, 1)
    model.sizes.clear()
    attribute_indexed(
        model, inputs, targets, "ShapleyValueSampling", range(6), n_samples=2, feature_mask=masks
    )
    assert set(model.sizes) == {1}


class _FakeMpsGenerator:
    """MPS's generator functions, recorded: the seeding and restoring are checked on a
    machine without MPS (nothing runs on MPS here)."""

    def __init__(self):
        self.state = torch.tensor([1, 2, 3], dtype=torch.uint8)
        self.seeds, self.restored = [], []

    def install(self, monkeypatch):
        monkeypatch.setattr(torch.mps, "get_rng_state", lambda *args, **kwargs: self.state)
        monkeypatch.setattr(torch.mps, "manual_seed", self.seeds.append)
        monkeypatch.setattr(
            torch.mps, "set_rng_state", lambda state, *args, **kwargs: self.restored.append(state)
        )


def test_the_per_input_seeding_seeds_and_gives_back_the_mps_generator(monkeypatch):
    # GradientShap draws its noise on the inputs' device: on MPS its generator was neither
    # seeded (maps differing from run to run) nor given back (the caller's draws moved)
    from lightning_distill.attribution.methods import _seeded

    fake = _FakeMpsGenerator()
    fake.install(monkeypatch)
    with _seeded(1234, torch.device("mps")):
        assert fake.seeds == [1234] and fake.restored == []
    assert fake.restored == [fake.state]
    with pytest.raises(RuntimeError, match="inside"), _seeded(5, torch.device("mps")):
        raise RuntimeError("inside")
    assert fake.seeds == [1234, 5] and fake.restored == [fake.state, fake.state]
    # a CPU device leaves MPS's generator alone
    with _seeded(9, torch.device("cpu")):
        pass
    assert fake.seeds == [1234, 5] and len(fake.restored) == 2


def test_a_monitor_reading_an_mps_model_gives_back_the_mps_generator(monkeypatch):
    from lightning_distill._monitoring import random_state_kept

    fake = _FakeMpsGenerator()
    fake.install(monkeypatch)
    with random_state_kept(torch.device("mps")):
        assert fake.restored == []
    assert fake.restored == [fake.state] and fake.seeds == []
    with random_state_kept(torch.device("cpu")):
        pass
    assert fake.restored == [fake.state]

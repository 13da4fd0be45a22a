"""Built-in augmentations and the check of what an augmentation returns."""

import copy
import pickle
import re

import numpy as np
import pytest
import torch
from scipy import stats

from lightning_distill import DistillationModule
from lightning_distill.kd.augment import _folded_beta_share, apply_augment, gaussian_noise, mixup
from tests.helpers import quiet_trainer


def test_mixup_mixes_each_row_with_another_dominated_by_itself():
    torch.manual_seed(0)
    x = torch.eye(6)  # rows are distinct basis vectors: weights can be read off
    y = torch.arange(6)
    before = x.clone()
    mixed, labels = mixup(0.4)(x, y)
    assert torch.equal(x, before) and torch.equal(labels, y)
    own = mixed.diagonal()
    assert bool((own >= 0.5).all())
    torch.testing.assert_close(mixed.sum(1), torch.ones(6))  # convex combinations of two rows
    assert bool(((mixed > 0).sum(1) <= 2).all())


def _own_shares(alpha: float, draws: int) -> np.ndarray:
    # mixup's weight of a row's own values
    return np.array([_folded_beta_share(alpha) for _ in range(draws)])


def test_mixup_share_follows_the_folded_beta_distribution_for_any_alpha():
    torch.manual_seed(0)
    for alpha in (0.2, 1.0, 4.0):
        shares = _own_shares(alpha, 1500)
        # P(max(l, 1 - l) <= t) = 2 F(t) - 1 for l ~ Beta(alpha, alpha)
        test = stats.kstest(shares, lambda t, a=alpha: 2 * stats.beta.cdf(t, a, a) - 1)
        assert test.pvalue > 1e-3, (alpha, test)
    # a tiny alpha barely mixes (a draw underflowing to 1/2 would mix the most)
    assert _own_shares(1e-6, 200).min() > 0.999
    assert (_own_shares(5e-324, 50) == 1.0).all()  # the smallest float64: no NaN
    # a huge one mixes half and half, with no overflow to inf
    assert np.allclose(_own_shares(1e39, 20), 0.5)


def test_gaussian_noise_statistics_and_purity():
    torch.manual_seed(1)
    x = torch.full((20000, 2), 3.0)
    noisy, _ = gaussian_noise(0.2)(x, torch.zeros(20000))
    assert torch.equal(x, torch.full((20000, 2), 3.0))
    assert float((noisy - 3.0).mean()).__abs__() < 0.01
    assert float((noisy - 3.0).std()) == pytest.approx(0.2, rel=0.03)


@pytest.mark.parametrize(
    "std, dtype", [(1e300, torch.float32), (1e39, torch.float32), (1e6, torch.float16)]
)
def test_gaussian_noise_too_large_for_the_inputs_dtype_is_named(std, dtype):
    # the noise overflowed to infinity and the step refused the inputs, naming neither std
    # nor the dtype; a std that the dtype holds still gives noise of that std
    x = torch.zeros(2000, 3, dtype=dtype)
    with pytest.raises(
        ValueError, match=rf"std must be small enough .*{dtype}.*; got {re.escape(repr(std))}"
    ):
        gaussian_noise(std)(x, None)
    fits = 1e30 if dtype == torch.float32 else 1e3
    noisy, _ = gaussian_noise(fits)(x, None)
    assert float(noisy.double().std()) == pytest.approx(fits, rel=0.05)
    if dtype != torch.float32:
        return
    # in training: named before the step's check of the inputs
    torch.manual_seed(0)
    module = DistillationModule(
        torch.nn.Linear(3, 2), torch.nn.Linear(3, 2), augment=gaussian_noise(std)
    )
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.zeros(8, 3), torch.zeros(8, dtype=torch.long)),
        batch_size=8,
    )
    trainer = quiet_trainer(max_steps=1)
    with pytest.raises(ValueError, match=r"std must be small enough"):
        trainer.fit(module, loader)


def test_apply_augment_checks_the_batch_size():
    x, y = torch.rand(8, 3), torch.arange(8)
    doubled = lambda inputs, targets: torch.cat([inputs, inputs])  # noqa: E731
    with pytest.raises(
        ValueError,
        match="augment must return inputs and targets with the same batch size; got inputs of batch size 16 and targets of batch size 8",
    ):
        apply_augment(doubled, x, y)
    both = lambda inputs, targets: (torch.cat([inputs, inputs]), torch.cat([targets, targets]))  # noqa: E731
    new_x, new_y = apply_augment(both, x, y)
    assert new_x.shape[0] == new_y.shape[0] == 16
    inputs_only = lambda inputs, targets: inputs * 2  # noqa: E731
    new_x, new_y = apply_augment(inputs_only, x, y)
    assert torch.equal(new_x, x * 2) and new_y is y


def test_apply_augment_refuses_what_is_not_a_batch():
    x, y = torch.rand(8, 3), torch.arange(8)

    def in_place(inputs, targets):
        inputs.mul_(1.0)

    as_list = lambda inputs, targets: [inputs, targets]  # noqa: E731
    for augment, got in ((in_place, "NoneType"), (as_list, "list")):
        with pytest.raises(
            TypeError,
            match=rf"augment must be a callable returning \(inputs, targets\) or new inputs "
            rf"\(a Tensor, as the inputs\); an in-place augmentation must still return them; "
            rf"got '?{got}'?\.",
        ):
            apply_augment(augment, x, y)
    named = {"income": torch.rand(8), "region": torch.zeros(8, dtype=torch.long)}
    with pytest.raises(TypeError, match=r"\(a Mapping, as the inputs\)"):
        apply_augment(lambda inputs, targets: inputs["income"], named, y)
    new_named, _ = apply_augment(lambda inputs, targets: dict(inputs), named, y)
    assert new_named.keys() == named.keys()


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: mixup(0.0), ValueError, r"alpha must be a finite number > 0.0; got 0.0\."),
        (lambda: mixup("a"), TypeError, "alpha must be a real number"),
        (lambda: gaussian_noise(-1), ValueError, "std must be"),
        (
            lambda: mixup(1.0)(torch.ones(3, 2, dtype=torch.long), torch.zeros(3)),
            TypeError,
            "inputs must be a floating-point tensor",
        ),
    ],
)
def test_bad_arguments(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize("factory", [mixup, gaussian_noise])
def test_the_factory_itself_is_refused_as_augment(factory):
    from lightning_distill import DistillationModule

    student, teacher = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with pytest.raises(TypeError, match=rf"got {factory.__name__} itself: call it"):
        DistillationModule(student, teacher, augment=factory)
    DistillationModule(student, teacher, augment=factory())  # what was meant


def test_an_augmentation_that_cannot_take_inputs_and_targets_is_refused_when_given():
    # it failed at the first training step with Python's "takes 1 positional argument but 2
    # were given", naming neither augment nor what it is given
    from lightning_distill import DistillationModule

    student, teacher = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)

    class Flip:
        def __call__(self, inputs):
            return inputs.flip(1)

    for augment in (lambda inputs: inputs, Flip(), lambda inputs, targets, strength: inputs):
        with pytest.raises(TypeError, match=r"augment must be a callable taking two arguments"):
            DistillationModule(student, teacher, augment=augment)
    # what may be called with (inputs, targets) is accepted
    for augment in (lambda *batch: batch, lambda inputs, targets=None, scale=2: inputs, max):
        DistillationModule(student, teacher, augment=augment)


def test_targets_returned_for_a_batch_without_labels_are_refused_in_plain_words():
    with pytest.raises(
        TypeError,
        match=r"augment must be a callable returning new inputs only, or \(inputs, None\): no "
        r"targets for a batch without labels; got",
    ):
        apply_augment(lambda inputs, targets: (inputs, torch.zeros(4)), torch.rand(4, 3), None)


def test_new_inputs_alone_for_tuple_inputs_are_not_read_as_inputs_and_targets():
    # inputs (features, codes): an augmentation returning the new pair alone was read as
    # (inputs, targets), the codes silently becoming the batch's targets
    x, codes, y = torch.rand(4, 3), torch.tensor([0, 1, 1, 0]), torch.tensor([1, 1, 0, 0])
    noisy_pair = lambda inputs, targets: (inputs[0] + 0.1, inputs[1])  # noqa: E731
    with pytest.raises(
        TypeError,
        match=r"augment must be a callable returning \(inputs, targets\) for inputs that are a "
        r"tuple .*; got 'a tuple whose first item is a Tensor'",
    ):
        apply_augment(noisy_pair, (x, codes), y)
    # the pair returned with the targets is read as such
    with_targets = lambda inputs, targets: ((inputs[0] + 0.1, inputs[1]), targets)  # noqa: E731
    (new_x, new_codes), new_y = apply_augment(with_targets, (x, codes), y)
    assert torch.allclose(new_x, x + 0.1) and new_codes is codes and new_y is y
    (same_x, _), same_y = apply_augment(lambda inputs, targets: inputs, [x, codes], y)
    assert same_x is x and same_y is y  # new inputs alone, a list: not a pair to misread


@pytest.mark.parametrize(
    ("make", "name", "value", "error"),
    [
        (mixup, "alpha", -0.5, ValueError),  # had drawn shares from no Beta distribution
        (mixup, "alpha", float("nan"), ValueError),
        (mixup, "alpha", "0.2", TypeError),
        (gaussian_noise, "std", -0.1, ValueError),
        (gaussian_noise, "std", float("nan"), ValueError),  # had made every input NaN
        (gaussian_noise, "std", None, TypeError),
    ],
)
def test_settings_set_after_construction_are_checked_as_the_constructor_does(
    make, name, value, error
):
    augment = make()
    with pytest.raises(error, match=f"^{name} must be"):
        setattr(augment, name, value)
    assert getattr(augment, name) == pytest.approx(0.2 if name == "alpha" else 0.1)  # kept
    with pytest.raises(error, match=f"^{name} must be"):
        make(value)  # the constructor's message
    setattr(augment, name, 0.5)  # a good value is taken, and acts
    assert repr(augment) == f"{make.__name__}({name}=0.5)"
    x = torch.zeros(2000, 2)
    out, _ = augment(x, torch.zeros(2000))
    if name == "std":
        assert 0.45 < float(out.std()) < 0.55
    copied = pickle.loads(pickle.dumps(augment))
    assert getattr(copied, name) == 0.5 and getattr(copy.deepcopy(augment), name) == 0.5

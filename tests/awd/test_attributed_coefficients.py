"""AttributedCoefficients: the positions a teacher's attributions point to, as features."""

import numpy as np
import pytest
import torch

from lightning_distill.awd import AttributedCoefficients, AWDModule

N = 16


def _coefficient_teacher(position: int):
    """An AWD module (db2, periodization: an orthogonal transform) and a linear teacher whose
    output is exactly the coefficient at ``position`` of that transform."""
    probe = AWDModule(torch.nn.Linear(N, 1), wavelet="db2", levels=2, mode="periodization")
    with torch.no_grad():
        analysis = torch.cat(
            [c.reshape(N, -1) for c in probe(torch.eye(N, dtype=probe.h0.dtype))], 1
        )
    teacher = torch.nn.Linear(N, 1, bias=False)
    with torch.no_grad():
        teacher.weight.copy_(analysis[:, position].to(teacher.weight.dtype))
    module = AWDModule(
        teacher, wavelet="db2", levels=2, mode="periodization", attribution="saliency"
    )
    return module, teacher


@pytest.mark.parametrize("position", [0, 5, 13])
def test_the_attributed_position_is_the_coefficient_the_teacher_reads(position):
    module, teacher = _coefficient_teacher(position)
    X = np.random.default_rng(position).normal(size=(64, N)).astype(np.float32)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    features = AttributedCoefficients(module, n_coefficients=3).fit(X)
    assert features.positions_[0] == position
    # saliency through an orthogonal synthesis: the gradient is one at that position, 0 elsewhere
    expected = np.zeros(N)
    expected[position] = 1.0
    np.testing.assert_allclose(features.attribution_, expected, atol=1e-5)
    with torch.no_grad():
        teacher_output = teacher(torch.from_numpy(X))[:, 0].numpy()
    np.testing.assert_allclose(features.transform(X)[:, 0], teacher_output, atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert features.get_feature_names_out()[0] == f"coefficient_{position}"


def test_batches_do_not_change_the_ranking():
    module, _ = _coefficient_teacher(7)
    X = np.random.default_rng(1).normal(size=(50, N)).astype(np.float32)
    whole = AttributedCoefficients(module, n_coefficients=4).fit(X)
    batched = AttributedCoefficients(module, n_coefficients=4, batch_size=7).fit(X)
    np.testing.assert_allclose(batched.attribution_, whole.attribution_, atol=1e-6)
    np.testing.assert_array_equal(batched.positions_, whole.positions_)


def test_bad_input_is_named():
    module, _ = _coefficient_teacher(0)
    X = np.zeros((8, N), dtype=np.float32)
    with pytest.raises(TypeError, match="module must be an AWDModule"):
        AttributedCoefficients(torch.nn.Linear(N, 1)).fit(X)
    with pytest.raises(ValueError, match="n_coefficients must be at most 16"):
        AttributedCoefficients(module, n_coefficients=17).fit(X)
    with pytest.raises(TypeError, match="n_coefficients must be an integer"):
        AttributedCoefficients(module, n_coefficients=2.5).fit(X)
    with pytest.raises(ValueError, match="X must be finite"):
        AttributedCoefficients(module).fit(np.full((4, N), np.nan, dtype=np.float32))
    fitted = AttributedCoefficients(module).fit(X)
    with pytest.raises(ValueError, match=r"samples of shape \(16,\)"):
        fitted.transform(np.zeros((3, 8), dtype=np.float32))


def test_a_module_whose_wavelet_changed_since_fit_is_refused():
    # trained further (or loaded) after fit, the module gives other coefficients at positions
    # ranked under the old wavelet
    module, _ = _coefficient_teacher(5)
    X = np.random.default_rng(0).normal(size=(32, N)).astype(np.float32)
    features = AttributedCoefficients(module, n_coefficients=3).fit(X)
    first = features.transform(X)
    with torch.no_grad():
        module.h0.add_(1e-3)
    with pytest.raises(ValueError, match="module must have the wavelet filter it had at fit"):
        features.transform(X)
    with torch.no_grad():
        module.h0.sub_(1e-3)  # back to within rounding: the same filter
    np.testing.assert_allclose(features.transform(X), first, atol=1e-5)
    # a cast of the same wavelet is the same filter
    module.double()
    np.testing.assert_allclose(features.transform(X.astype(np.float64)), first, atol=1e-5)
    features.fit(X)  # fitted again: taken (the attributed position first; the others tie at 0)
    np.testing.assert_allclose(features.transform(X)[:, 0], first[:, 0], atol=1e-3)

"""WaveletFeatures, awd_path and the pictures."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import pywt
import torch
from matplotlib.figure import Figure
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

from lightning_distill.awd import AWDModule, WaveletFeatures, awd_path, wavelet_from_filter
from lightning_distill.awd.features import band_names, top_coefficients
from lightning_distill.awd.plotting import (
    plot_filters,
    plot_top_reconstructions,
    plot_wavelet_functions,
)


def test_passes_scikit_learn_estimator_checks():
    failures = [
        (r["check_name"], r["exception"])
        for r in check_estimator(WaveletFeatures("haar", levels=1), on_fail=None)
        if r["status"] == "failed"
    ]
    assert not failures


@pytest.mark.parametrize("absolute", [True, False])
def test_features_are_the_top_coefficients_of_each_pywt_band(absolute):
    X = np.random.default_rng(0).normal(size=(5, 40))
    features = WaveletFeatures(
        "db2", levels=3, mode="symmetric", n_coefficients=2, absolute=absolute
    ).fit_transform(X)
    bands = pywt.wavedec(X, "db2", mode="symmetric", level=3)
    assert features.shape == (5, 4 * 2)
    for i in range(5):
        for b, band in enumerate(bands):
            row = band[i]
            order = np.argsort(-np.abs(row), kind="stable")[:2]
            expected = np.abs(row[order]) if absolute else row[order]
            np.testing.assert_allclose(features[i, 2 * b : 2 * b + 2], expected)


def test_image_features_use_wavedec2():
    images = np.random.default_rng(1).normal(size=(3, 8, 8))
    transformer = WaveletFeatures("haar", levels=2, image_shape=(8, 8), absolute=False)
    features = transformer.fit_transform(images.reshape(3, -1))
    reference = pywt.wavedec2(images, "haar", level=2)
    bands = [reference[0], *(b for level in reference[1:] for b in level)]
    np.testing.assert_allclose(features, top_coefficients(bands, 1, absolute=False))
    assert transformer.get_feature_names_out().tolist()[:4] == ["cA2_1", "cH2_1", "cV2_1", "cD2_1"]


def test_learned_wavelet_in_pipeline_recovers_a_wavelet_coefficient_target():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 32))
    wavelet = wavelet_from_filter(pywt.Wavelet("db2").rec_lo)
    cD = pywt.wavedec(X, "db2", mode="zero", level=2)[1]  # level-2 details
    y = np.abs(cD).max(axis=1)
    model = make_pipeline(
        WaveletFeatures(wavelet, levels=2, n_coefficients=1), LinearRegression()
    ).fit(X, y)
    assert model.score(X, y) > 0.999
    # the same wavelet given by name or by its scaling filter gives the same features
    by_name = WaveletFeatures("db2", levels=2).fit_transform(X)
    by_filter = WaveletFeatures(list(pywt.Wavelet("db2").rec_lo), levels=2).fit_transform(X)
    np.testing.assert_allclose(by_filter, by_name, atol=1e-12)


def test_feature_bad_input():
    X = np.zeros((4, 16))
    with pytest.raises(ValueError, match="n_coefficients must be at most"):
        WaveletFeatures("haar", levels=4, n_coefficients=2).fit(X)
    with pytest.raises(ValueError, match="image_shape must be"):
        WaveletFeatures("haar", levels=1, image_shape=(3, 3)).fit(X)
    with pytest.raises(ValueError, match="orthogonal PyWavelets wavelet, got 'bior1.3'"):
        WaveletFeatures("bior1.3", levels=1).fit(X)
    with pytest.raises(ValueError, match="levels must be between 1 and 4"):
        WaveletFeatures("haar", levels=5).fit(X)
    with pytest.raises(ValueError, match="mode must be one of"):
        WaveletFeatures("haar", levels=1, mode="smooth").fit(X)
    assert band_names(1, 2) == ["cA1", "cH1", "cV1", "cD1"]


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"levels": 2.0}, TypeError, r"^levels must be an integer >= 1; got 2\.0\.$"),
        ({"levels": "2"}, TypeError, r"^levels must be an integer >= 1; got '2'\.$"),
        ({"levels": 0}, ValueError, r"^levels must be an integer >= 1; got 0\.$"),
        ({"n_coefficients": 1.0}, TypeError, r"^n_coefficients must be an integer >= 1; got 1\.0"),
        ({"n_coefficients": -1}, ValueError, r"^n_coefficients must be an integer >= 1; got -1"),
    ],
    ids=["levels-float", "levels-str", "levels-0", "m-float", "m-negative"],
)
def test_feature_counts_of_the_wrong_type_are_type_errors(params, error, match):
    # a float (2.0) had been refused as a ValueError, as if its value were out of range
    X = np.random.default_rng(0).normal(size=(4, 16))
    with pytest.raises(error, match=match):
        WaveletFeatures("haar", **{"levels": 2, **params}).fit(X)
    # numpy integers are integers
    fitted = WaveletFeatures("haar", levels=np.int64(2), n_coefficients=np.int64(1)).fit(X)
    assert fitted.transform(X).shape == (4, 3)


@pytest.mark.parametrize(
    "changed",
    [
        {"n_coefficients": 1},
        {"levels": 3},
        {"absolute": False},
        {"mode": "periodization"},
        {"image_shape": (8, 4)},
    ],
    ids=["n_coefficients", "levels", "absolute", "mode", "image_shape"],
)
def test_transform_uses_the_settings_of_fit_until_refitted(changed):
    # set_params without refitting had changed transform's output (another column count than
    # get_feature_names_out, or other values under the same names)
    X = np.random.default_rng(3).normal(size=(6, 32))
    settings = {"levels": 2, "n_coefficients": 2, "absolute": True, "mode": "zero"}
    fitted = WaveletFeatures("db2", **settings).fit(X)
    expected = WaveletFeatures("db2", **settings).fit(X)
    fitted.set_params(**changed)
    features = fitted.transform(X)
    np.testing.assert_array_equal(features, expected.transform(X))
    assert features.shape[1] == len(fitted.get_feature_names_out())
    assert fitted.get_feature_names_out().tolist() == expected.get_feature_names_out().tolist()
    # fitting again takes the new settings
    refitted = fitted.fit(X)
    fresh = WaveletFeatures("db2", **{**settings, **changed}).fit(X)
    np.testing.assert_array_equal(refitted.transform(X), fresh.transform(X))
    assert refitted.get_feature_names_out().tolist() == fresh.get_feature_names_out().tolist()


def _linear_teacher(length=32, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(length, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def test_awd_path_warm_starts_and_picks_best_by_cv():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 32)).astype(np.float32)
    y = X[:, :4].sum(axis=1)
    path = awd_path(
        _linear_teacher(),
        X,
        y,
        sparsity_weights=[0.0, 0.01],
        attribution_weights=[0.0, 0.1],
        wavelet="db2",
        levels=2,
        max_epochs=1,
        batch_size=30,
        cv=3,
        estimator=RidgeCV(),
        module_kwargs={"lr": 1e-2},
    )
    results = path.results
    assert len(results) == 4 and len(path.wavelets) == 4
    assert results["warm_start"].tolist() == [-1, 0, 0, 2]
    assert path.best_index == int(results["cv_score"].idxmax())
    assert path.best_params == {
        "sparsity_weight": results.loc[path.best_index, "sparsity_weight"],
        "attribution_weight": results.loc[path.best_index, "attribution_weight"],
    }
    # the refitted best pipeline uses the best wavelet
    assert path.best_pipeline[0].wavelet is path.best_wavelet
    assert path.best_pipeline.predict(X).shape == (60,)
    # warm start: the point after the first continued from the first point's filter, which
    # differs from db2 after training
    assert not np.allclose(path.wavelets[0].rec_lo, pywt.Wavelet("db2").rec_lo)


def test_awd_path_of_zero_weights_only_says_so_once():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 32)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        awd_path(
            _linear_teacher(), X, X[:, 0], wavelet="db2", levels=2, max_epochs=1,
            batch_size=20, cv=2, estimator=RidgeCV(),
        )  # fmt: skip
    said = [str(w.message) for w in caught]
    assert (
        sum("grid has sparsity_weights and attribution_weights of 0 only" in m for m in said) == 1
    )
    assert not any("no term that distils" in m for m in said)  # not once per point


def test_awd_path_bad_input():
    X = np.zeros((10, 16), dtype=np.float32)
    with pytest.raises(ValueError, match="sparsity_weights must be a non-empty"):
        awd_path(_linear_teacher(16), X, np.zeros(10), sparsity_weights=[-1.0])
    with pytest.raises(ValueError, match="same number of samples"):
        awd_path(_linear_teacher(16), X, np.zeros(9))
    with pytest.raises(ValueError, match="module_kwargs must not set 'levels'"):
        awd_path(_linear_teacher(16), X, np.zeros(10), module_kwargs={"levels": 2})
    with pytest.raises(ValueError, match=r"X must be shaped \(n_samples, length\) for dim=1"):
        awd_path(_linear_teacher(16), X.reshape(10, 1, 16), np.zeros(10))
    with pytest.raises(ValueError, match=r"X must be shaped \(n_samples, 1, height, width\)"):
        awd_path(_linear_teacher(16), X, np.zeros(10), dim=2)
    for bad in (1.5, True, "0"):
        with pytest.raises(TypeError, match="random_state must be an integer >= 0; got"):
            awd_path(_linear_teacher(16), X, np.zeros(10), random_state=bad)
    with pytest.raises(ValueError, match=r"random_state must be an integer >= 0; got -1\."):
        awd_path(_linear_teacher(16), X, np.zeros(10), random_state=-1)
    with pytest.raises(ValueError, match="must not set 'seed' when random_state is given"):
        awd_path(_linear_teacher(16), X, np.zeros(10), random_state=0, module_kwargs={"seed": 1})


def test_awd_path_is_reproducible_with_random_state():
    # shuffled batches and noisy starting filters: same random_state, same path, whatever the
    # global torch seed; another random_state, another path
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 16)).astype(np.float32)
    y = X[:, :2].sum(axis=1)

    def run(random_state, global_seed):
        teacher = _linear_teacher(16)  # seeds torch itself, so set the global seed after it
        torch.manual_seed(global_seed)
        return awd_path(
            teacher,
            X,
            y,
            attribution_weights=[0.0, 0.1],
            wavelet="db2",
            levels=2,
            max_epochs=1,
            batch_size=10,
            cv=2,
            module_kwargs={"lr": 0.05, "init_noise": 0.01},
            random_state=random_state,
        )

    first, second, other = run(7, 0), run(7, 1), run(8, 0)
    pd.testing.assert_frame_equal(first.results, second.results)
    for a, b in zip(first.wavelets, second.wavelets):
        assert a.rec_lo == b.rec_lo
    for a, b in zip(first.wavelets, other.wavelets):
        assert not np.allclose(a.rec_lo, b.rec_lo)


def test_reconstruct_top_keeps_exactly_the_most_attributed_coefficients():
    torch.manual_seed(0)
    teacher = torch.nn.Linear(16, 1, bias=False).double()
    module = AWDModule(teacher, wavelet="haar", levels=2, mode="periodization").double()
    x = torch.randn(3, 16, dtype=torch.float64)
    rebuilt, kept = module.reconstruct_top(x, 2)
    assert all(int(sum(k[i].sum() for k in kept)) == 2 for i in range(3))
    # linear teacher: saliency of coefficient c is its analysis of w, constant over samples
    saliency = torch.cat([c.reshape(-1) for c in module(teacher.weight.detach())]).abs()
    top = set(saliency.topk(2).indices.tolist())
    flat_kept = torch.cat([k[0].reshape(-1) for k in kept])
    assert set(torch.nonzero(flat_kept).reshape(-1).tolist()) == top
    masked = [c.detach().numpy() * k.numpy() for c, k in zip(module(x), kept)]
    expected = pywt.waverec(masked, "haar", mode="periodization")
    np.testing.assert_allclose(rebuilt.numpy(), expected, atol=1e-12)
    # all coefficients kept: perfect reconstruction with the valid haar filter
    full, _ = module.reconstruct_top(x, 16)
    torch.testing.assert_close(full, x)
    with pytest.raises(ValueError, match="n_coefficients must be between 1 and 16"):
        module.reconstruct_top(x, 17)


def test_mean_attributions_of_a_linear_teacher_are_its_weights_analysis():
    torch.manual_seed(1)
    teacher = torch.nn.Linear(16, 1, bias=False).double()
    module = AWDModule(teacher, wavelet="db2", levels=2).double()
    means = module.mean_attributions(torch.randn(5, 16, dtype=torch.float64))
    expected = module(teacher.weight.detach())
    for m, e in zip(means, expected):
        torch.testing.assert_close(m, e[0].detach().abs())


def test_pictures_are_drawn(tmp_path):
    module = AWDModule(_linear_teacher(), wavelet="db2", levels=2, init_noise=0.05, seed=0)
    open_before = plt.get_fignums()
    figures = [
        plot_filters(module, reference="db2"),
        plot_wavelet_functions(module, reference=list(pywt.Wavelet("db2").rec_lo), level=5),
        plot_top_reconstructions(module, torch.randn(3, 32), n_coefficients=4),
    ]
    image_module = AWDModule(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1)),
        wavelet="haar",
        levels=2,
        dim=2,
    )
    figures.append(plot_top_reconstructions(image_module, torch.randn(2, 1, 8, 8), 5))
    for k, fig in enumerate(figures):
        assert isinstance(fig, Figure)
        assert fig.axes and all(ax.has_data() for ax in fig.axes)
        fig.savefig(tmp_path / f"{k}.png")
    # built without pyplot: nothing left open in the user's session
    assert plt.get_fignums() == open_before
    # filter stems are the learned taps
    fig = plot_filters(module)
    heights = fig.axes[0].containers[0].markerline.get_ydata()
    np.testing.assert_allclose(heights, module.learned_wavelet().rec_lo)


class _LastChannel(torch.nn.Module):
    """An image teacher that reads channel 2 only."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(64, 1)

    def forward(self, x):
        return self.linear(x[:, 2].flatten(1))


def test_top_reconstructions_show_the_channel_the_kept_coefficients_rebuild():
    # channel 0 holds none of the kept coefficients of a teacher that reads channel 2 only:
    # drawing it gave blank panels, as if the teacher relied on nothing
    torch.manual_seed(3)
    module = AWDModule(_LastChannel(), wavelet="haar", levels=2, dim=2)
    x = torch.randn(2, 3, 8, 8)
    figure = plot_top_reconstructions(module, x, 5)
    rebuilt, _ = module.reconstruct_top(x, 5)
    for k in range(2):
        original, kept = (ax.images[0].get_array() for ax in figure.axes[2 * k : 2 * k + 2])
        np.testing.assert_allclose(np.asarray(original), x[k, 2].double().numpy())
        np.testing.assert_allclose(np.asarray(kept), rebuilt[k, 2].detach().double().numpy())
        assert figure.axes[2 * k].get_ylabel() == "channel 2"


def test_top_reconstructions_take_a_loaders_batch_and_refuse_a_bad_number_of_examples():
    module = AWDModule(_linear_teacher(), wavelet="db2", levels=2)
    x = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    rebuilt, _ = module.reconstruct_top(x, 4)
    # a batch as a DataLoader gives it (signals and labels, or a dict) draws the signals
    for batch in ((x, torch.zeros(3)), [x], {"inputs": x}):
        figure = plot_top_reconstructions(module, batch, 4)
        assert len(figure.axes) == 3
        for k, ax in enumerate(figure.axes):
            original, kept = (line.get_ydata() for line in ax.lines)
            np.testing.assert_allclose(original, x[k].double().numpy())
            np.testing.assert_allclose(kept, rebuilt[k].detach().double().numpy())
    # n_examples=-1 had drawn all but the last example, 0 had blamed the batch, 2.5 torch
    for bad, error in ((-1, ValueError), (0, ValueError), (2.5, TypeError)):
        with pytest.raises(error, match="n_examples must be"):
            plot_top_reconstructions(module, x, 4, n_examples=bad)


@pytest.mark.parametrize(
    ("shape", "error"),
    [((6.9, 10), TypeError), ((-6, -10), TypeError), ("6x10", TypeError), ((6, 10, 1), TypeError)],
)
def test_feature_image_shapes_that_are_not_two_positive_ints_are_named(shape, error):
    with pytest.raises(error, match="image_shape must be None or \\(height, width\\), two ints"):
        WaveletFeatures("haar", levels=1, image_shape=shape).fit(np.zeros((4, 60)))
    fitted = WaveletFeatures("haar", levels=1, image_shape=(np.int64(6), 10)).fit(np.ones((4, 60)))
    assert fitted.image_shape_ == (6, 10) and fitted.transform(np.ones((2, 60))).shape == (2, 4)


def test_awd_path_settings_fail_before_any_training():
    X = np.random.default_rng(0).normal(size=(10, 16)).astype(np.float32)
    trained = []

    class Counting(torch.nn.Linear):
        def forward(self, x):
            trained.append(1)
            return super().forward(x)

    for kwargs, error, match in (
        ({"max_epochs": 0}, ValueError, "max_epochs must be an integer >= 1"),
        ({"max_epochs": -1}, ValueError, "max_epochs must be an integer >= 1"),
        ({"trainer_kwargs": {"max_epochs": 3}}, ValueError, "must be without 'max_epochs'"),
        ({"trainer_kwargs": {"max_epoch": 3}}, TypeError, "arguments of lightning.Trainer"),
        ({"n_coefficients": 50, "levels": 2}, ValueError, "n_coefficients must be at most 6"),
        ({"batch_size": 0}, ValueError, r"batch_size must be an integer >= 1; got 0\."),
        ({"batch_size": 2.5}, TypeError, r"batch_size must be an integer >= 1; got 2\.5\."),
        ({"sparsity_weights": "a"}, TypeError, r"sparsity_weights must be .*; got 'a'\."),
        ({"attribution_weights": "0.5"}, TypeError, r"attribution_weights must .*; got '0\.5'"),
        ({"attribution_weights": [0.1, None]}, ValueError, r"attribution_weights must be a"),
        ({"sparsity_weights": [[0.1]]}, ValueError, r"sparsity_weights must .*; got \[\[0\.1\]\]"),
        ({"random_state": -1}, ValueError, r"random_state must be an integer >= 0; got -1\."),
    ):
        with pytest.raises(error, match=match):
            awd_path(Counting(16, 1), X, np.zeros(10), wavelet="db2", **kwargs)
    assert not trained


def test_awd_path_never_picks_a_failed_point_and_keeps_float64_signals():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 32))  # float64
    y = X[:, 3]
    seen = []

    def failing_first_point(estimator, X_fold, y_fold):
        seen.append(X_fold.dtype)
        if estimator[0].wavelet.name == "awd_0":
            return float("nan")  # a fold whose metric is undefined
        return r2_score(y_fold, estimator.predict(X_fold))

    kwargs = {"wavelet": "db2", "levels": 2, "cv": 2, "max_epochs": 1, "batch_size": 24}
    path = awd_path(
        torch.nn.Linear(32, 1),
        X,
        y,
        attribution_weights=[0.0, 0.1],
        scoring=failing_first_point,
        random_state=0,
        **kwargs,
    )
    assert np.isnan(path.results["cv_score"][0]) and path.best_index == 1
    assert set(seen) == {np.dtype(np.float64)}
    with pytest.raises(ValueError, match="every point's cv_score is NaN"):
        awd_path(torch.nn.Linear(32, 1), X, y, scoring=lambda *args: float("nan"), **kwargs)


def test_awd_path_gives_the_teacher_back_in_its_dtype_under_a_casting_precision():
    # trainer_kwargs={"precision": "64-true"} casts each point's module, teacher included; the
    # user's float32 teacher then failed on float32 inputs after the call
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(
        torch.nn.Linear(16, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)
    )
    before = {name: t.clone() for name, t in teacher.state_dict().items()}
    objects = [*teacher.parameters(), *teacher.buffers()]
    X = np.random.default_rng(0).normal(size=(20, 16))
    path = awd_path(
        teacher,
        X,
        X[:, 0],
        attribution_weights=[0.0, 0.1],
        wavelet="db2",
        levels=2,
        cv=2,
        max_epochs=1,
        batch_size=10,
        random_state=0,
        trainer_kwargs={"precision": "64-true"},
    )
    assert len(path.results) == 2
    after = teacher.state_dict()
    assert all(after[name].dtype == value.dtype for name, value in before.items())
    assert all(torch.equal(after[name], value) for name, value in before.items())
    assert all(a is b for a, b in zip([*teacher.parameters(), *teacher.buffers()], objects))
    teacher.eval()
    assert teacher(torch.randn(3, 16)).dtype == torch.float32


def test_wavelet_functions_take_a_level_from_1_to_20_named():
    # pywt drew a float level truncated, refused 0 without naming the argument, and at level
    # 30 asked for tens of GB
    for level, error in ((0, ValueError), (21, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match=r"^level must be an integer >= 1 and <= 20"):
            plot_wavelet_functions("db2", level=level)
    assert isinstance(plot_wavelet_functions("db2", level=3), Figure)


def test_top_reconstructions_of_something_else_than_a_module_are_a_type_error():
    # the module's check_input was looked up on a pywt.Wavelet: an AttributeError
    with pytest.raises(TypeError, match=r"^module must be an AWDModule; got Wavelet"):
        plot_top_reconstructions(pywt.Wavelet("db2"), torch.randn(2, 16), 3)


def test_filters_legend_names_both_wavelets_with_their_own_marks():
    # the stems' base line stood for the learned taps in the legend (a black line beside the
    # blue markers), and the reference could be named by its wavelet's name alone
    fig = plot_filters(
        pywt.Wavelet("sym5"), reference="db5", label="learned (from db5 + noise)",
        reference_label="db5 (made y)",
    )  # fmt: skip
    for ax in fig.axes:
        _, names = ax.get_legend_handles_labels()
        assert names == ["db5 (made y)", "learned (from db5 + noise)"]
        for stems in ax.containers:
            assert not stems.baseline.get_visible() or stems.baseline.get_linestyle() == "None"
        assert any(
            list(line.get_ydata()) == [0, 0] and line.get_color() == "k" for line in ax.lines
        )  # the zero line, drawn apart
    functions = plot_wavelet_functions(
        "sym5", reference="db5", level=3, label="l", reference_label="r"
    )
    assert functions.axes[0].get_legend_handles_labels()[1] == ["r", "l"]
    assert plot_filters("db2").axes[0].get_legend_handles_labels()[1] == ["db2"]
    with pytest.raises(TypeError, match="^label must be a str or None; got int"):
        plot_filters("db2", label=3)

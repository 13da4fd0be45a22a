"""Tidy shape functions of an EBM: bin alignment, jackknife bands, recovered shapes."""

import re

import numpy as np
import pandas as pd
import pytest
from interpret.glassbox import ExplainableBoostingRegressor
from scipy.stats import t as student_t

from sklearn_distill import DistilledGAM
from sklearn_distill.shapes import shape_functions

pytestmark = pytest.mark.filterwarnings("ignore:Missing values detected")


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    n = 800
    X = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.uniform(0, 5, size=n),
            "kind": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
        }
    )
    X.loc[::10, "x"] = np.nan
    target = np.sin(2 * X["x"].fillna(0)) + (X["kind"] == "b") + 0.3 * X["z"] * (X["kind"] == "a")
    ebm = ExplainableBoostingRegressor(
        outer_bags=4,
        max_rounds=300,
        learning_rate=0.3,
        interactions=1,
        max_bins=16,
        n_jobs=1,
        random_state=0,
    )
    return X, ebm.fit(X, target)


def test_scores_line_up_with_the_model(fitted):
    """Evaluating the EBM at each row's value gives back that row's score."""
    X, ebm = fitted
    table = shape_functions(ebm, interactions=False)
    for index, term in enumerate(ebm.term_names_[:3]):
        rows = table[table.term == term]
        probe = pd.DataFrame({c: [X[c].iloc[1]] * len(rows) for c in X.columns})
        probe[term] = rows["value"].to_numpy()
        if term == "kind":
            probe[term] = pd.Categorical(probe[term], categories=X["kind"].cat.categories)
        else:
            probe[term] = probe[term].astype(float)
        np.testing.assert_allclose(ebm.eval_terms(probe)[:, index], rows["score"].to_numpy())
        assert rows["weight"].sum() == len(X)  # every training row sits in one bin
    x = table[table.term == "x"]
    assert x["value"].isna().sum() == 1
    assert x.loc[x["value"].isna(), "weight"].item() == X["x"].isna().sum()
    edges = x.dropna(subset=["bin_low"])
    assert np.all(edges["bin_low"].to_numpy() <= edges["value"].to_numpy())
    assert np.all(edges["value"].to_numpy() <= edges["bin_high"].to_numpy())
    np.testing.assert_array_equal(
        edges["bin_high"].to_numpy()[:-1], edges["bin_low"].to_numpy()[1:]
    )


def test_jackknife_bands(fitted):
    _, ebm = fitted
    table = shape_functions(ebm, confidence=0.9)
    bagged = ebm.bagged_scores_[1]  # term "z"
    fraction = 1 - ebm.validation_size
    expected = np.std(bagged, axis=0, ddof=1) * np.sqrt(fraction / (1 - fraction))
    z = table[table.term == "z"]
    # z has no missing values: its table starts at bin 1 and leaves out the unseen bin
    np.testing.assert_allclose(z["std_error"].to_numpy(), expected[1 : 1 + len(z)])
    # Student's t on the bags' degrees of freedom (4 bags: 3)
    assert (z["dof"] == 3).all()
    half_width = student_t.ppf(0.95, 3) * z["std_error"].to_numpy()
    np.testing.assert_allclose(z["upper"] - z["score"], half_width)
    np.testing.assert_allclose(z["score"] - z["lower"], half_width)
    wider = shape_functions(ebm, confidence=0.99)
    assert np.all((wider.upper - wider.lower) >= (table.upper - table.lower) - 1e-12)


def test_jackknife_bands_of_a_weighted_fit_with_a_count_of_validation_rows():
    # validation_size=40 holds out 40 of the 400 rows in each bag, whatever the rows' weights:
    # each bag is fitted on 90% of them (the weights summed 800, and 40 of 800 had been read)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 2))
    ebm = ExplainableBoostingRegressor(
        outer_bags=4, max_rounds=50, interactions=0, validation_size=40, n_jobs=1, random_state=0
    )
    ebm.fit(X, X[:, 0] + rng.normal(size=400), sample_weight=np.full(400, 2.0))
    table = shape_functions(ebm)
    fraction = 1 - 40 / 400
    bagged = np.asarray(ebm.bagged_scores_[0])
    expected = np.std(bagged, axis=0, ddof=1) * np.sqrt(fraction / (1 - fraction))
    rows = table[table.term == ebm.term_names_[0]]
    np.testing.assert_allclose(rows["std_error"], expected[rows["bin"].to_numpy(int)])


def test_interaction_rows(fitted):
    X, ebm = fitted
    table = shape_functions(ebm)
    pair = ebm.term_names_[-1]
    assert " & " in pair
    rows = table[table.term == pair]
    assert all(isinstance(value, tuple) and len(value) == 2 for value in rows["value"])
    assert rows["weight"].sum() == len(X)
    assert pair not in set(shape_functions(ebm, interactions=False).term)


def test_no_bands_without_subsampled_bags():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    ebm = ExplainableBoostingRegressor(outer_bags=1, max_rounds=50, interactions=0, n_jobs=1)
    with pytest.warns(UserWarning, match="cannot give confidence bands"):
        table = shape_functions(ebm.fit(X, X[:, 0]))
    assert table["lower"].isna().all() and table["score"].notna().all()
    with pytest.raises(TypeError, match="fitted Explainable Boosting Machine"):
        shape_functions(object())


def test_no_bands_for_a_merged_ebm():
    # merge_ebms pools the bags of models fitted on different halves of the data: each bag saw
    # 85% of its own half, and bag_weights_ over the merged bin weights reads 42.5%; no
    # jackknife over such bags estimates a sampling spread, so the merged model gets no band
    import pickle

    from interpret.glassbox import merge_ebms

    from sklearn_distill.shapes import interaction_blocks

    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    y = X[:, 0] ** 2 + X[:, 0] * X[:, 1] + 0.3 * rng.normal(size=400)
    halves = [
        ExplainableBoostingRegressor(
            outer_bags=4, max_rounds=50, interactions=[(0, 1)], n_jobs=1, random_state=seed
        ).fit(X[rows], y[rows])
        for seed, rows in enumerate([slice(0, 200), slice(200, 400)])
    ]
    merged = merge_ebms(halves)
    for model in [merged, pickle.loads(pickle.dumps(merged))]:
        with pytest.warns(UserWarning, match="merge_ebms"):
            table = shape_functions(model)
        assert table[["std_error", "lower", "upper"]].isna().all().all()
        # the shapes themselves are the merged model's: its scores, bin by bin
        for index, name in enumerate(model.term_names_):
            rows = table[table.term == name]
            if len(model.term_features_[index]) == 1:
                expected = model.term_scores_[index][rows["bin"].to_numpy(int)]
                np.testing.assert_allclose(rows["score"], expected)
        blocks, _ = interaction_blocks(model)
        assert len(blocks) and blocks["std_error"].isna().all()
    for half in halves:  # each model fitted on its own data keeps its bands
        assert shape_functions(half)["std_error"].notna().all()


def test_jackknife_of_a_subsample_mean_is_its_full_sample_variance():
    """The delete-d jackknife's factor r / d = f / (1 - f): for the mean, over subsamples of r
    of n rows without replacement, (r / d) * Var_subsamples is exactly S^2 / n."""
    from itertools import combinations
    from types import SimpleNamespace

    from sklearn_distill.shapes import _jackknife

    x = np.array([0.3, -1.2, 2.5, 0.7, -0.4, 1.9, -2.2, 0.1])
    n, r = x.size, 6
    means = np.array([x[list(keep)].mean() for keep in combinations(range(n), r)])
    ebm = SimpleNamespace(bin_weights_=[np.ones(n)], bag_weights_=np.full(means.size, r))
    # np.std(ddof=1) over all C(n, r) subsamples: rescale to the population variance
    population = _jackknife(ebm, means[:, None])[0] ** 2 * (means.size - 1) / means.size
    np.testing.assert_allclose(population, np.var(x, ddof=1) / n)


def test_a_monotonized_term_keeps_its_scores_without_a_band():
    # interpret drops a term's bagged scores when it monotonizes it
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2))
    ebm = ExplainableBoostingRegressor(
        outer_bags=4, max_rounds=50, interactions=0, n_jobs=1, random_state=0
    )
    ebm.fit(X, np.sin(X[:, 0]) + X[:, 1] + rng.normal(size=200))
    ebm.monotonize(0)
    table = shape_functions(ebm)
    first = table[table.term == ebm.term_names_[0]]
    np.testing.assert_allclose(first["score"], ebm.term_scores_[0][first["bin"].to_numpy(int)])
    assert first[["std_error", "dof", "lower", "upper"]].isna().all().all()
    second = table[table.term == ebm.term_names_[1]]
    fraction = 1 - ebm.validation_size
    expected = np.std(ebm.bagged_scores_[1], axis=0, ddof=1) * np.sqrt(fraction / (1 - fraction))
    np.testing.assert_allclose(second["std_error"], expected[second["bin"].to_numpy(int)])
    assert (second["dof"] == 3).all()


@pytest.mark.filterwarnings("ignore:For multiclass we cannot currently visualize pairs")
def test_a_multiclass_ebm_is_refused():
    from interpret.glassbox import ExplainableBoostingClassifier

    from sklearn_distill.shapes import interaction_blocks

    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, 3))
    ebm = ExplainableBoostingClassifier(
        outer_bags=2, max_rounds=20, interactions=[(1, 2)], n_jobs=1, random_state=0
    )
    ebm.fit(X, np.digitize(X[:, 0], [-0.5, 0.5]))
    message = r"ebm must be a binary or regression EBM .*; got a multiclass .* with 3 classes"
    for interactions in (True, False):  # not an empty table without the interactions
        with pytest.raises(ValueError, match=message):
            shape_functions(ebm, interactions=interactions)
    with pytest.raises(ValueError, match=message):
        interaction_blocks(ebm)


def test_distilled_shape_recovers_the_teacher_component():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 2))

    def teacher(data):
        return np.sin(2 * data[:, 0]) + data[:, 1]

    student = ExplainableBoostingRegressor(
        outer_bags=3,
        max_rounds=1000,
        smoothing_rounds=0,
        learning_rate=0.3,
        interactions=0,
        max_bins=64,
        n_jobs=1,
        random_state=0,
    )
    gam = DistilledGAM(teacher, student=student).fit(X)
    shapes = gam.shape_functions()
    x0 = shapes[shapes.term == "feature_0000"]
    # the shape is a step function: compare each bin with the teacher's mean over the bin
    cuts = x0["bin_high"].to_numpy(dtype=float)[:-1]
    component = np.sin(2 * X[:, 0]) - np.mean(np.sin(2 * X[:, 0]))  # EBM shapes are centred
    bin_of_row = np.searchsorted(cuts, X[:, 0], side="right")
    truth = np.array([component[bin_of_row == b].mean() for b in range(len(x0))])
    np.testing.assert_array_equal(np.bincount(bin_of_row), x0["weight"].to_numpy())
    assert np.sqrt(np.average((x0["score"] - truth) ** 2, weights=x0["weight"])) < 0.03


def test_discrete_feature_values_are_recovered_exactly():
    rng = np.random.default_rng(3)
    levels = np.array([0.0, 1.0, 5.0, 7.0, 20.0])
    X = np.column_stack([rng.choice(levels, 600), rng.normal(size=600)])
    ebm = ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=50, interactions=0, n_jobs=1, random_state=0
    ).fit(X, np.log1p(X[:, 0]) + X[:, 1])
    table = shape_functions(ebm)
    discrete = table[table.term == "feature_0000"]
    np.testing.assert_array_equal(discrete["value"].to_numpy(dtype=float), levels)
    np.testing.assert_array_equal(
        discrete["weight"].to_numpy(), [np.sum(X[:, 0] == v) for v in levels]
    )
    # 600 distinct values in 600 bins: each bin's value is recovered too
    continuous = table[table.term == "feature_0001"]
    np.testing.assert_allclose(continuous["value"].to_numpy(dtype=float), np.sort(X[:, 1]))
    # with fewer bins than values, a bin's value is its midpoint
    coarse = ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=50, interactions=0, max_bins=16, n_jobs=1, random_state=0
    ).fit(X, X[:, 1])
    binned = shape_functions(coarse)
    binned = binned[binned.term == "feature_0001"]
    middle = (binned["bin_low"] + binned["bin_high"]).to_numpy(dtype=float) / 2
    np.testing.assert_allclose(binned["value"].to_numpy(dtype=float), middle)


def test_integer_features_are_labelled_by_the_values_their_bins_hold():
    rng = np.random.default_rng(4)
    age = np.concatenate([np.arange(18, 70), rng.integers(18, 70, size=800)])
    other = rng.normal(size=age.size)
    X = pd.DataFrame({"age": age, "other": other})
    ebm = ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=50, interactions=0, max_bins=16, n_jobs=1, random_state=0
    ).fit(X, np.log(age) + other)
    rows = shape_functions(ebm).query("term == 'age'")
    # every integer 18..69 occurs, so a bin's label runs from the least to the greatest age
    # that falls in it (assigned by the bin's upper edge, independently of the labels)
    bin_of_row = np.searchsorted(rows["bin_high"].to_numpy(float)[:-1], age, side="right")
    expected = []
    for b in range(len(rows)):
        held = age[bin_of_row == b]
        low, high = held.min(), held.max()
        expected.append(str(low) if low == high else f"{low}-{high}")
    assert rows["label"].tolist() == expected
    np.testing.assert_array_equal(
        rows["value"].to_numpy(float), [int(label.split("-")[0]) for label in expected]
    )
    assert any("-" in label for label in expected)  # some bins hold several ages
    # a non-integer feature is labelled by its bin edges
    others = shape_functions(ebm).query("term == 'other'")
    first = others.iloc[0]
    assert first["label"] == f"[{first['bin_low']:.4g}, {first['bin_high']:.4g})"
    assert others.iloc[-1]["label"].endswith("]")
    assert (others["kind"] == "main").all()


def test_interaction_cells_carry_both_labels(fitted):
    _, ebm = fitted
    table = shape_functions(ebm)
    cells = table[table["kind"] == "interaction"]
    mains = table[table["kind"] == "main"]
    assert len(cells) and len(mains)
    for value, labels in zip(cells["value"], cells["label"]):
        assert len(value) == 2
        assert isinstance(labels, tuple) and len(labels) == 2
        assert all(isinstance(label, str) for label in labels)
    assert all(isinstance(b, tuple) for b in cells["bin"])


def test_boolean_features_are_labelled_false_and_true():
    rng = np.random.default_rng(8)
    flag = rng.uniform(size=400) < 0.3
    X = np.column_stack([flag.astype(float), rng.normal(size=400)])
    ebm = ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=50, interactions=0, n_jobs=1, random_state=0
    ).fit(X, 2.0 * flag + X[:, 1])
    plain = shape_functions(ebm)
    named = shape_functions(ebm, boolean_features=[0])
    rows = named[named["term"] == "feature_0000"]
    assert rows["label"].tolist() == ["False", "True"]
    assert rows["value"].tolist() == [False, True]
    # only the labels and values of the boolean feature change
    pd.testing.assert_frame_equal(
        named.drop(columns=["value", "label"]), plain.drop(columns=["value", "label"])
    )
    others = named["term"] != "feature_0000"
    pd.testing.assert_frame_equal(named[others], plain[others])
    for bad, error in (
        ("0", TypeError),
        ([0.5], TypeError),
        ([True], TypeError),
        ([-1], ValueError),
    ):
        with pytest.raises(error, match="boolean_features must be a collection of feature indices"):
            shape_functions(ebm, boolean_features=bad)


def test_plot_shapes_draws_each_terms_scores(fitted):
    """The picture holds the table's numbers: the step line of a numeric term, the points of a
    categorical one, the cells of an interaction's heatmap."""
    import matplotlib

    matplotlib.use("Agg")
    from sklearn_distill.plotting import plot_shapes

    _, ebm = fitted
    table = shape_functions(ebm)
    fig = plot_shapes(table)
    mains = [t for t in dict.fromkeys(table.term) if " & " not in t]
    pairs = [t for t in dict.fromkeys(table.term) if " & " in t]
    titled = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert set(titled) == set(mains) | set(pairs)

    x = table[(table.term == "x") & table["value"].notna()].sort_values("value")
    line = titled["x"].get_lines()[0]
    # the step goes on to the last bin's upper edge, the feature's largest value
    scores = x["score"].to_numpy()
    np.testing.assert_allclose(line.get_ydata(), np.append(scores, scores[-1]))
    edge = float(x["bin_high"].iloc[-1])
    np.testing.assert_allclose(line.get_xdata(), np.append(x["value"].to_numpy(float), edge))

    kind = table[table.term == "kind"]
    points = titled["kind"].get_lines()[0]  # the error bar's centres
    np.testing.assert_allclose(points.get_ydata(), kind["score"].to_numpy())

    (pair,) = pairs
    cells = table[table.term == pair]
    image = titled[pair].get_images()[0].get_array()
    assert np.ma.count(image) == len(cells)  # one coloured cell per interaction cell
    assert np.isclose(np.ma.max(image), cells["score"].max())
    assert np.isclose(np.ma.min(image), cells["score"].min())

    one = plot_shapes(table, ["kind"])
    assert [ax.get_title() for ax in one.axes] == ["kind"]
    named = plot_shapes(table, ["kind", pair], ylabel="contribution ($)")
    labels = [ax.get_ylabel() for ax in named.axes]
    assert labels.count("contribution ($)") == 2  # the panel and the heatmap's colour bar


def test_plot_shapes_bad_input_and_classes(fitted):
    from sklearn_distill.plotting import plot_shapes

    _, ebm = fitted
    table = shape_functions(ebm, interactions=False)
    with pytest.raises(TypeError, match="shapes must be a pandas DataFrame"):
        plot_shapes(table.to_numpy())
    with pytest.raises(ValueError, match="without 'upper'"):
        plot_shapes(table.drop(columns="upper"))
    with pytest.raises(ValueError, match=r"terms must be terms of the shapes table .*\['age'\]"):
        plot_shapes(table, ["age"])
    with pytest.raises(ValueError, match="class_ must be None for a table of one class"):
        plot_shapes(table, class_="a")
    several = pd.concat([table.assign(**{"class": "a"}), table.assign(**{"class": "b"})])
    several["score"] = np.where(several["class"] == "b", -several["score"], several["score"])
    with pytest.raises(ValueError, match=r"class_ must be one of the table's classes \['a', 'b'\]"):
        plot_shapes(several)
    fig = plot_shapes(several, ["kind"], class_="b")
    assert fig.get_suptitle() == "Shapes of class b"
    assert plot_shapes(table, ["kind"]).get_suptitle() == ""  # one class: no title to add
    np.testing.assert_allclose(
        fig.axes[0].get_lines()[0].get_ydata(), -table[table.term == "kind"]["score"].to_numpy()
    )


def test_bin_and_block_labels_write_a_features_numbers_in_one_notation():
    # an income from a few thousand to hundreds of thousands was labelled
    # "[8521, 4.763e+04)": one number positional, the other scientific, in the same label
    from sklearn_distill.shapes import interaction_blocks

    rng = np.random.default_rng(3)
    n = 600
    X = pd.DataFrame(
        {
            "income": np.exp(rng.uniform(np.log(2000), np.log(400000), size=n)) + 0.37,
            "tiny": rng.uniform(0, 4e-4, size=n),
            "huge": rng.uniform(1e6, 5e7, size=n) + 0.5,
        }
    )
    target = np.log(X["income"]) + 1e3 * X["tiny"] * (X["huge"] > 2e7) + rng.normal(size=n)
    ebm = ExplainableBoostingRegressor(
        outer_bags=2, max_rounds=100, interactions=3, max_bins=24, n_jobs=1, random_state=0
    ).fit(X, target)
    table = shape_functions(ebm, interactions=False)
    blocks, _ = interaction_blocks(ebm)
    number = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]\d+)?")
    for feature, scientific in (("income", False), ("tiny", True), ("huge", True)):
        rows = table[(table["term"] == feature) & table["bin_low"].notna()]
        labels = rows["label"].tolist()
        labels += [pair[i] for pair, pairs in zip(blocks["label"], blocks["features"])
                   for i in range(2) if pairs[i] == feature]  # fmt: skip
        assert len(labels) > len(rows)  # the feature's blocks are among them
        texts = [text for label in labels for text in number.findall(label)]
        # one notation for every number of the feature, the one that suits its scale
        assert {"e" in text for text in texts} == {scientific}, labels
        # each bin's edges to 4 significant digits, and bins told apart
        for label, low, high in zip(labels, rows["bin_low"], rows["bin_high"]):
            np.testing.assert_allclose(
                [float(t) for t in number.findall(label)], [low, high], rtol=5e-4
            )
        assert len(set(rows["label"])) == len(rows)


def _count_world(seed, n=2000):
    """Rows with a count feature and a noise-free additive target (a teacher's score)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "count": rng.negative_binomial(1, 0.3, n),
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
        }
    )
    return X, 0.8 * np.log1p(X["count"]) + np.sin(2 * X["a"]) + 0.5 * X["b"] ** 2


def test_the_default_students_bands_rest_on_seven_degrees_of_freedom():
    from scipy.stats import f as fisher

    X, target = _count_world(0, n=400)
    gam = DistilledGAM(random_state=0, n_jobs=1).fit(X, teacher_scores=target)
    table = gam.shape_functions()
    # eight bags: every main-effect band is a t interval on 7 degrees of freedom
    mains = table[table.kind == "main"]
    assert (mains["dof"] == 7).all()
    half_width = student_t.ppf(0.975, 7) * mains["std_error"].to_numpy()
    np.testing.assert_allclose((mains["upper"] - mains["score"]).to_numpy(), half_width)
    # why eight: two values whose scores are equally variable get standard errors 5 times
    # apart with probability P(F(d, d) > 25) both ways; on 3 degrees of freedom (4 bags)
    # 2.5%, a pair in every 40, on 7 under 0.1%
    dof = mains["dof"].iloc[0]
    assert 2 * fisher.sf(25, dof, dof) < 0.001
    assert 2 * fisher.sf(25, 3, 3) > 0.02


@pytest.mark.slow
def test_the_default_students_bands_cover_the_shapes_spread_over_refits():
    # the jackknife over the bags carries the bags' boosting paths as well as their rows, so on
    # a noise-free target the bands are wider than the shape's spread over fits on new rows
    # (2.5-3 times in benchmarks/gam_band_stability.py): the band's standard error at least
    # matches the refit spread at most values
    def count_shape(seed):
        X, target = _count_world(seed)
        gam = DistilledGAM(random_state=seed, n_jobs=1).fit(X, teacher_scores=target)
        table = gam.shape_functions()
        return table[table.term == "count"].set_index("label").reindex([str(v) for v in range(8)])

    first = count_shape(0)
    spread = pd.concat([count_shape(100 + k)["score"] for k in range(8)], axis=1).std(
        axis=1, ddof=1
    )
    ratio = (first["std_error"] / spread).to_numpy()
    assert np.all(np.isfinite(ratio))
    assert np.median(ratio) > 1.2
    assert np.mean(ratio >= 0.8) >= 0.75

"""How often `CompareAudit`'s collinearity warning fires, on generated worlds.

`_warn_if_collinear` (called by `CompareAudit.fit`) warns when features nearly determine each
other. Each world is a small frame of features; the warning function is called on it directly
(no model is fitted) and a world counts as warned when it emits the "strongly correlated"
warning. Three families of worlds:

*null* (the features are not near-copies: a warning is a false alarm)

- ``independent``: a number, a 0/1 flag held as a number, and categories of 2, 5, 30 and 200
  levels (equal frequencies) and of 30 levels with Zipf frequencies, all independent;
- ``associated mean``: a number whose mean differs by the level of a 5-level category, the
  correlation ratio drawn from U(0.3, 0.7);
- ``noisy quartiles`` / ``noisy deciles``: a number's quartile (decile) band as text, with a
  share of rows drawn from U(0.2, 0.4) moved to a neighbouring band;
- ``noisy quartiles as numbers`` / ``noisy deciles as numbers``: the same bands held as their
  numbers 0..k-1 (Spearman's correlation: what the numeric rule says of them);
- ``associated categories``: two 5-level categories, the second the first's level with
  probability p ~ U(0.5, 0.8) and a uniform level otherwise (Cramér's V = p);
- ``sparse associated``: the same with ``rows // 5`` levels each (five rows a level, the most
  the warning admits: Cramér's V is biased upward by about ``(levels - 1) / rows`` in its
  square), p ~ U(0.5, 0.8);
- ``sparse independent``: two independent categories of ``rows // 5`` levels each;
- ``associated flag``: a 0/1 number and a yes/no category that agree on a share of rows drawn
  from U(0.7, 0.85) (phi about 0.4-0.7);
- ``rare level``: a category with a level on 3% of rows, half of them among the number's top
  20%, and a second category whose rare level holds half of the first's rare rows.

*edge* (near the threshold): ``sparse, V 0.85`` / ``0.87`` / ``0.90``, the sparse pair at
that mixing (a true Cramér's V of 0.85, 0.87, 0.9 read at five rows a level).

*should warn* (near-copies)

- ``quartiles`` / ``deciles`` / ``unequal bands``: a number's bands as text (quantiles at 10%
  and 70% for the unequal ones), 2% of them missing;
- ``relabelled``: an 8-level category and its relabelling, 2% of the relabelling missing;
- ``city and state``: 40 cities, each in one of 6 states; ``many cities and state``: ``rows //
  5`` cities (five rows a city);
- ``rounded``: a number and its copy rounded to the nearest 5 (some 15 values);
- ``top 5% flag``: a number and a yes/no text flag of its top 5% (a derived copy that explains
  little of the number's variance).

Prints, per kind and number of rows, the worlds warned, the share with an exact (Clopper-
Pearson) binomial 95% interval, and which measure named the pairs in the warned worlds.

Usage: ``PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/audit_collinearity.py [--worlds N]
[--rows 300 2000 20000] [--seed 0]`` (about 35 s with the defaults).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from sklearn_distill.audit import _warn_if_collinear


def _text(codes, prefix="L"):
    return np.array([f"{prefix}{c}" for c in range(int(np.max(codes)) + 1)], dtype=object)[codes]


def _bands(x, quantiles):
    edges = np.quantile(x, quantiles)
    return np.searchsorted(edges, x, side="right")


def _missing(values, rng, share=0.02):
    values = np.asarray(values, dtype=object).copy()
    values[rng.uniform(size=values.size) < share] = None
    return values


def _noisy_band(x, k, rng):
    band = _bands(x, np.linspace(0, 1, k + 1)[1:-1])
    moved = rng.uniform(size=x.size) < rng.uniform(0.2, 0.4)
    step = rng.choice([-1, 1], x.size)
    step = np.where(band == 0, 1, np.where(band == k - 1, -1, step))
    band = np.where(moved, band + step, band)
    return pd.DataFrame({"x": x, "band": _text(band, "B")})


def _mixed_pair(rng, rows, levels, p):
    a = rng.integers(0, levels, rows)
    b = np.where(rng.uniform(size=rows) < p, a, rng.integers(0, levels, rows))
    return pd.DataFrame({"a": _text(a, "A"), "b": _text(b, "B")})


def independent(rng, rows):
    zipf = rng.zipf(1.6, rows * 4)
    zipf = zipf[zipf <= 30][:rows] - 1
    frame = {"x": rng.normal(size=rows), "flag": rng.integers(0, 2, rows).astype(float)}
    for k in (2, 5, 30, 200):
        frame[f"c{k}"] = _text(rng.integers(0, k, rows))
    frame["zipf30"] = _text(zipf)
    return pd.DataFrame(frame)


def associated_mean(rng, rows):
    # x = effect of the level + noise; eta^2 = var(effect) / (var(effect) + var(noise))
    eta = rng.uniform(0.3, 0.7)
    level = rng.integers(0, 5, rows)
    effect = np.linspace(-1, 1, 5)[level] / np.sqrt(0.5)  # variance 1
    noise = rng.normal(size=rows) * np.sqrt((1 - eta**2) / eta**2)
    return pd.DataFrame({"x": effect + noise, "level": _text(level)})


def noisy_quartiles(rng, rows):
    return _noisy_band(rng.normal(size=rows), 4, rng)


def noisy_deciles(rng, rows):
    return _noisy_band(rng.normal(size=rows), 10, rng)


def noisy_quartile_codes(rng, rows):
    frame = noisy_quartiles(rng, rows)
    return frame.assign(band=frame["band"].str[1:].astype(float))


def noisy_decile_codes(rng, rows):
    frame = noisy_deciles(rng, rows)
    return frame.assign(band=frame["band"].str[1:].astype(float))


def associated_categories(rng, rows):
    return _mixed_pair(rng, rows, 5, rng.uniform(0.5, 0.8))


def sparse_associated(rng, rows):
    return _mixed_pair(rng, rows, rows // 5, rng.uniform(0.5, 0.8))


def sparse_independent(rng, rows):
    return _mixed_pair(rng, rows, rows // 5, 0.0)


def sparse_085(rng, rows):
    return _mixed_pair(rng, rows, rows // 5, 0.85)


def sparse_087(rng, rows):
    return _mixed_pair(rng, rows, rows // 5, 0.87)


def sparse_090(rng, rows):
    return _mixed_pair(rng, rows, rows // 5, 0.90)


def associated_flag(rng, rows):
    flag = rng.integers(0, 2, rows)
    agree = rng.uniform(size=rows) < rng.uniform(0.7, 0.85)
    other = np.where(agree, flag, 1 - flag)
    return pd.DataFrame({"flag": flag.astype(float), "kind": np.where(other, "yes", "no")})


def rare_level(rng, rows):
    x = rng.lognormal(size=rows)
    top = x > np.quantile(x, 0.8)
    rare = np.where(top, rng.uniform(size=rows) < 0.075, rng.uniform(size=rows) < 0.0187)
    other = np.where(rare, rng.uniform(size=rows) < 0.5, rng.uniform(size=rows) < 0.015)
    return pd.DataFrame(
        {"x": x, "kind": np.where(rare, "rare", "common"), "mark": np.where(other, "m", "-")}
    )


def quartiles(rng, rows):
    x = rng.lognormal(size=rows)
    return pd.DataFrame({"x": x, "band": _missing(_text(_bands(x, [0.25, 0.5, 0.75]), "Q"), rng)})


def deciles(rng, rows):
    x = rng.normal(size=rows)
    band = _bands(x, np.linspace(0.1, 0.9, 9))
    return pd.DataFrame({"x": x, "band": _missing(_text(band, "D"), rng)})


def unequal_bands(rng, rows):
    x = rng.uniform(18, 90, rows)
    return pd.DataFrame({"x": x, "band": _missing(_text(_bands(x, [0.1, 0.7]), "U"), rng)})


def relabelled(rng, rows):
    level = rng.integers(0, 8, rows)
    names = rng.permutation(8)
    return pd.DataFrame({"a": _text(level, "A"), "b": _missing(_text(names[level], "B"), rng)})


def city_and_state(rng, rows):
    state_of = rng.integers(0, 6, 40)
    city = rng.integers(0, 40, rows)
    return pd.DataFrame({"city": _text(city, "C"), "state": _text(state_of[city], "S")})


def many_cities(rng, rows):
    state_of = rng.integers(0, 6, rows // 5)
    city = rng.integers(0, rows // 5, rows)
    return pd.DataFrame({"city": _text(city, "C"), "state": _text(state_of[city], "S")})


def rounded(rng, rows):
    x = rng.normal(50, 10, rows)
    return pd.DataFrame({"x": x, "x_rounded": np.round(x / 5) * 5})


def top_flag(rng, rows):
    x = rng.normal(size=rows)
    return pd.DataFrame({"x": x, "top": np.where(x > np.quantile(x, 0.95), "top", "rest")})


NULL = {
    "independent": independent,
    "associated mean": associated_mean,
    "noisy quartiles": noisy_quartiles,
    "noisy deciles": noisy_deciles,
    "noisy quartiles as numbers": noisy_quartile_codes,
    "noisy deciles as numbers": noisy_decile_codes,
    "associated categories": associated_categories,
    "sparse associated": sparse_associated,
    "sparse independent": sparse_independent,
    "associated flag": associated_flag,
    "rare level": rare_level,
}
COPIES = {
    "quartiles": quartiles,
    "deciles": deciles,
    "unequal bands": unequal_bands,
    "relabelled": relabelled,
    "city and state": city_and_state,
    "many cities and state": many_cities,
    "rounded": rounded,
    "top 5% flag": top_flag,
}
EDGE = {
    "sparse, V 0.85": sparse_085,
    "sparse, V 0.87": sparse_087,
    "sparse, V 0.90": sparse_090,
}
MEASURES = {"Cramér's V": "V", "normalised correlation ratio": "banding"}


def warned(X) -> str | None:
    """The measures named in the warning (``"rho"``, ``"V"``, ``"banding"``), or None."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_if_collinear(X)
    said = [str(w.message) for w in caught if "strongly correlated" in str(w.message)]
    if not said:
        return None
    listed = said[0].split("): ", 1)[1] if "): " in said[0] else said[0]
    found = {short for long, short in MEASURES.items() if long in listed}
    # a Spearman pair is listed with its figure alone: "'a' and 'b' (0.97)"
    if any(
        part.strip().split(")")[0].replace(".", "").replace("-", "").isdigit()
        for part in listed.split("(")[1:]
    ):
        found.add("rho")
    return "+".join(sorted(found)) or "?"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=_positive, default=400, help="worlds per kind and size")
    parser.add_argument("--rows", type=_positive, nargs="+", default=[300, 2000, 20000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    begun = time.perf_counter()
    print("| family | kind | rows | worlds | warned | share | 95% interval | measures |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for family, kinds in (("null", NULL), ("edge", EDGE), ("copy", COPIES)):
        for kind_index, (kind, make) in enumerate(kinds.items()):
            for rows in args.rows:
                # a few worlds at the largest size: each costs up to tens of ms there
                n_worlds = args.worlds if rows <= 2000 else max(args.worlds // 4, 1)
                # a stream per family, kind and size (the edge family was added last)
                seed = [args.seed, ("null", "copy", "edge").index(family), kind_index, rows]
                rng = np.random.default_rng(seed)
                named = [warned(make(rng, rows)) for _ in range(n_worlds)]
                hits = [m for m in named if m is not None]
                ci = binomtest(len(hits), n_worlds).proportion_ci(0.95)
                measures = ", ".join(f"{m} {hits.count(m)}" for m in sorted(set(hits))) or "-"
                print(
                    f"| {family} | {kind} | {rows:,} | {n_worlds} | {len(hits)} | "
                    f"{len(hits) / n_worlds:.3f} | {ci.low:.3f}-{ci.high:.3f} | {measures} |",
                    flush=True,
                )
    print(f"({time.perf_counter() - begun:.0f} s)")


if __name__ == "__main__":
    main()

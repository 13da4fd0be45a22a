"""Every documented name imports from its capability's folder and from its old place alike."""

import importlib

import pytest

# (old place, new place, names)
MOVES = [
    (
        "lightning_distill",
        "lightning_distill.kd",
        ["DistillationModule", "FeatureDistillation", "KnowledgeDistillation"],
    ),
    ("lightning_distill", "lightning_distill.hooks", ["FeatureHooks"]),
    ("lightning_distill.features", "lightning_distill.hooks", ["FeatureHooks"]),
    (
        "lightning_distill.module",
        "lightning_distill.kd.module",
        ["DistillationModule", "FeatureDistillation"],
    ),
    ("lightning_distill.callbacks", "lightning_distill.kd.callback", ["KnowledgeDistillation"]),
    ("lightning_distill.callbacks", "lightning_distill.dissection.monitor", ["DissectionMonitor"]),
    (
        "lightning_distill.losses",
        "lightning_distill.kd.losses",
        [
            "kd_loss",
            "distillation_loss",
            "distillation_terms",
            "label_smoothing_loss",
            "attention_transfer_loss",
            "hint_loss",
            "HintRegressor",
        ],
    ),
    (
        "lightning_distill.losses",
        "lightning_distill.kd.feature_losses",
        ["dkd_loss", "dkd_warmup", "rkd_loss", "pkt_loss"],
    ),
    (
        "lightning_distill.metrics",
        "lightning_distill.dissection.metric",
        ["NetworkDissection", "DissectionResults", "ThresholdsNotSetError"],
    ),
    (
        "lightning_distill.functional",
        "lightning_distill.dissection.functional",
        [
            "NETDISSECT_QUANTILE",
            "activation_histogram",
            "histogram_quantile",
            "dissection_tally",
            "dissection_iou",
            "best_concepts",
        ],
    ),
    (
        "lightning_distill.datasets",
        "lightning_distill.dissection",
        ["SyntheticConcepts", "BrodenDataset"],
    ),
    (
        "lightning_distill.visualize",
        "lightning_distill.dissection.plotting",
        ["plot_category_counts", "plot_unit_grid"],
    ),
    ("sklearn_distill", "sklearn_distill.gam", ["DistilledGAM"]),
    ("sklearn_distill", "sklearn_distill.audit", ["CompareAudit"]),
]


@pytest.mark.parametrize(("old", "new", "names"), MOVES)
def test_old_and_new_paths_give_the_same_objects(old, new, names):
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(old_module, name) is getattr(new_module, name), name

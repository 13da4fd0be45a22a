from pathlib import Path

import pytest

from tests.helpers import run_ddp_script

SCRIPT = Path(__file__).with_name("kd_ddp_script.py")
CALLBACK_SCRIPT = Path(__file__).with_name("kd_callback_ddp_script.py")


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_two_cpu_processes_log_same_metrics_as_one(tmp_path):
    single = run_ddp_script(SCRIPT, 1, tmp_path / "single.json")
    double = run_ddp_script(SCRIPT, 2, tmp_path / "ddp.json")
    assert single.pop("world_size") == 1 and double.pop("world_size") == 2
    assert single.pop("steps") == double.pop("steps") > 0
    # same updates: the student's weights agree up to the order of the gradient all-reduce
    assert double.pop("weight_sum") == pytest.approx(single.pop("weight_sum"), rel=1e-5)
    assert set(single) == {"val/loss", "val/acc", "val/teacher_agreement", "val/teacher_acc"}
    assert set(double) == set(single)
    for key in ("val/acc", "val/teacher_agreement", "val/teacher_acc"):
        assert double[key] == pytest.approx(single[key], abs=1e-6), key
    assert double["val/loss"] == pytest.approx(single["val/loss"], rel=1e-4)


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_with_a_monotone_constraint_updates_as_one_process(tmp_path):
    # the chain penalty's hand-written backward feeds DDP's gradient all-reduce like any other
    single = run_ddp_script(SCRIPT, 1, tmp_path / "single.json", "monotonic")
    double = run_ddp_script(SCRIPT, 2, tmp_path / "ddp.json", "monotonic")
    plain = run_ddp_script(SCRIPT, 1, tmp_path / "plain.json")
    assert single["steps"] == double["steps"] > 0
    assert double["weight_sum"] == pytest.approx(single["weight_sum"], rel=1e-5)
    assert abs(single["weight_sum"] - plain["weight_sum"]) > 1e-3  # the constraint acted


@pytest.mark.ddp
@pytest.mark.slow
def test_callback_feature_parts_are_one_across_processes(tmp_path):
    # each process draws the hint regressor from its own random state (seeded by rank): the
    # callback starts every process from rank 0's, and the run equals the one-process run
    single = run_ddp_script(CALLBACK_SCRIPT, 1, tmp_path / "single.json")
    double = run_ddp_script(CALLBACK_SCRIPT, 2, tmp_path / "ddp.json")
    first, second = double["regressor_sums"]
    assert first == second
    assert double["regressor_sum"] == pytest.approx(single["regressor_sum"], rel=1e-5)
    assert double["weight_sum"] == pytest.approx(single["weight_sum"], rel=1e-5)
    assert double["val/ce"] == pytest.approx(single["val/ce"], rel=1e-4)


MIXED_SCRIPT = Path(__file__).with_name("kd_mixed_ddp_script.py")


@pytest.mark.ddp
@pytest.mark.slow
def test_processes_that_log_different_terms_agree_on_the_epoch_means(tmp_path):
    # one process sees labelled batches only (a label term), the other unlabelled ones: the
    # processes made different numbers of syncs, and the run hung at an epoch's end
    single = run_ddp_script(MIXED_SCRIPT, 1, tmp_path / "single.json")
    double = run_ddp_script(MIXED_SCRIPT, 2, tmp_path / "ddp.json")
    assert set(double) == set(single) and "train/loss_epoch" in single
    assert len(single) > 2  # terms of the labelled batches only among them
    for name, value in single.items():  # means over the samples of both processes
        assert double[name] == pytest.approx(value, rel=1e-5), name


NAN_SCRIPT = Path(__file__).with_name("kd_nan_ddp_script.py")


@pytest.mark.ddp
@pytest.mark.slow
def test_nan_logits_under_ddp_are_warned_of_once_with_the_count_of_all_processes(tmp_path):
    # each process warned of its own share ("2 of the 48"), once per process; the figures,
    # synced, read NaN for all. Now rank 0 says the whole count once per epoch, as one process
    import math

    single = run_ddp_script(NAN_SCRIPT, 1, tmp_path / "single.json")
    double = run_ddp_script(NAN_SCRIPT, 2, tmp_path / "ddp.json")

    def counts(messages):
        return [m.split("for ", 1)[1].split(" validation")[0] for m in messages]

    # the sanity check's 2 batches (samples 0-63 of one process; 0-31 then 32-63, split by
    # rank, of two: the same samples) hold 3 NaN rows; the epoch's validation all 4 of the 96
    (alone,) = single["warnings"]
    first, second = double["warnings"]
    assert counts(alone) == counts(first) == ["3 of the 64", "4 of the 96"]
    assert second == []
    for run in (single, double):
        assert all(math.isnan(run["figures"][k]) for k in ("val/acc", "val/teacher_agreement"))

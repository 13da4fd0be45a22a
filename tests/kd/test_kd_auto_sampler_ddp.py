from pathlib import Path

import pytest

from tests.helpers import run_ddp_script

SCRIPT = Path(__file__).with_name("kd_auto_sampler_ddp_script.py")


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_with_lightnings_sampler_is_one_process_on_the_same_global_batches(tmp_path):
    # Lightning's sampler shuffles, pads 65 samples to 66 and gives each process batch_size
    # samples: the run is one process fed the union of the processes' batches, step by step
    # (CRD's banks, indexed by sample, included)
    single = run_ddp_script(SCRIPT, 1, tmp_path / "single.json")
    double = run_ddp_script(SCRIPT, 2, tmp_path / "ddp.json")
    assert single.pop("world_size") == 1 and double.pop("world_size") == 2
    assert single.pop("steps") == double.pop("steps") == 10  # ceil(33 / 8) per epoch
    assert single.pop("crd_steps") == double.pop("crd_steps") == 10
    assert double.pop("bank") == pytest.approx(single.pop("bank"), abs=1e-5)
    for key in ("bank_teacher_sum", "weight_sum"):
        assert double.pop(key) == pytest.approx(single.pop(key), rel=1e-5), key
    assert (
        set(double)
        == set(single)
        == {"val/loss", "val/acc", "val/teacher_agreement", "val/teacher_acc"}
    )
    for key in ("val/acc", "val/teacher_agreement", "val/teacher_acc"):
        assert double[key] == pytest.approx(single[key], abs=1e-6), key
    assert double["val/loss"] == pytest.approx(single["val/loss"], rel=1e-4)

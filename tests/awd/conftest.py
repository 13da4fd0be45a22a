import warnings

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # The AWD tests run many tiny convolutions; on a busy 2-core machine torch's intra-op thread
    # pool turns each into a ~10 ms synchronisation, which dominates the run. Restored after.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _expected_warnings():
    # warnings these tests provoke on purpose (levels past pywt.dwt_max_level, a frozen teacher
    # in eval mode, loaders without workers or validation) or that come from dependencies
    with warnings.catch_warnings():
        for message in (
            ".*dwt_max_level.*",
            ".*Level value of.*",
            ".*eval mode.*",
            ".*LeafSpec.*",
            ".*does not have many workers.*",
            ".*no `val_dataloader`.*",
        ):
            warnings.filterwarnings("ignore", message=message)
        yield

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

"""Training tests run torch on one thread: small matmuls are faster so, and a busy machine
does not stall on thread synchronisation."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

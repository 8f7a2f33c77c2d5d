"""tests/sim: run the (small-tensor) format and MAC tests on one torch thread.

Intra-op threads only add spin-wait overhead on these tiny tensors, and on a loaded
2-core machine they cost more system time than the tests themselves. Benchmarks keep
torch's default so they measure what users get.
"""
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread(request):
    if request.node.get_closest_marker("bench"):
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)

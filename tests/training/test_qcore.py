"""QuantState: quantization points use the format's own encode; matmuls are mac_reference calls."""


import pytest
import torch
from fewbits.sim import mac_reference
from fewbits.sim.run import RunSpec
from fewbits.training.qcore import QT, QuantState


@pytest.mark.parametrize("seed", [0, 1])
def test_matmul_is_mac_reference_on_the_codes(seed):
    gen = torch.Generator().manual_seed(seed)
    qs = QuantState(RunSpec.parse("dfixed:9", "dfixed:12"))
    a = qs.quantize("a", torch.randn(6, 40, generator=gen, dtype=torch.float64))
    b = qs.quantize("b", torch.randn(40, 5, generator=gen, dtype=torch.float64))
    bias = qs.quantize("bias", torch.randn(5, generator=gen, dtype=torch.float64))
    z = qs.matmul("t", a, b, "z", bias)
    ref, ovf = mac_reference(a.codes, b.codes, a.fmt, b.fmt, None, z.fmt, bias.codes, bias.fmt)
    assert torch.equal(z.codes, ref) and torch.equal(z.values, z.fmt.decode(ref))
    assert qs.controller.state("z").count == 30 and qs.controller.state("z").overflow == int(ovf.sum())


def test_unquantized_run_is_plain_float32():
    qs = QuantState(RunSpec.parse("fp32", "fp32"))
    x = torch.randn(3, 4)
    q = qs.quantize("g", x)
    assert q.fmt is None and q.codes is None and torch.equal(q.values, x)
    z = qs.matmul("t", q, QT(torch.eye(4)), "z")
    assert torch.equal(z.values, x @ torch.eye(4))

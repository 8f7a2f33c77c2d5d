"""hexio: fixed-width hex lines round-trip, unknown (x/z) digits are flagged."""

import numpy as np
import pytest
from fewbits.cosim import hexio


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip(seed):
    rng = np.random.default_rng(seed)
    widths = [1, 4, 5, 11, 16, 32]
    cols = [rng.integers(0, 1 << w, size=257, dtype=np.int64) for w in widths]
    data = hexio.encode_lines(cols, widths)
    back = hexio.decode_lines(data, [(f"f{i}", w) for i, w in enumerate(widths)])
    for i, c in enumerate(cols):
        assert np.array_equal(back[f"f{i}"], c)


def test_negative_codes_are_masked():
    data = hexio.encode_lines([np.array([-1, -8], dtype=np.int64)], [4])
    assert data == b"f\n8\n"


def test_unknown_and_bits():
    out = hexio.decode_lines(b"0a 1x 101\n", [("a", 8), ("b", 8), ("o:bits", 3)])
    assert out["a"].tolist() == [10] and out["b"].tolist() == [hexio.UNKNOWN]
    assert out["o"].tolist() == [[True, False, True]] and not out["o:unknown"][0]
    with pytest.raises(ValueError, match="whole number"):
        hexio.decode_lines(b"0a 1\n", [("a", 8), ("b", 8)])

"""hw.eda.synth_parts: a cached part export is keyed by every source that generated it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fewbits.hw.eda import synth_parts
from fewbits.sim import MacSpec, parse_format


@pytest.mark.parametrize("fmt,arch", [("fixed:4:2", "yosys"), ("fixed:4:2", "booth"), ("fixed:4:2", "dadda"),
                                      ("dfixed:6", "dadda"), ("float:3:2", "yosys")])
@pytest.mark.parametrize("part", synth_parts.PARTS)
def test_every_generator_module_is_in_the_digest(fmt, arch, part):
    """Each fewbits.hw / fewbits.sim module that building the part loaded is one of the digest's sources
    (an edit to hw/multipliers.py once left stale exports: the digest read hw/eda/*.py only)."""
    f = parse_format(fmt)
    spec = MacSpec(f, f, f, rows=1, cols=1, k_max=8, multiplier=arch)
    synth_parts.component(spec, part)
    loaded = {Path(m.__file__).resolve() for name, m in list(sys.modules.items())
              if name.startswith(("fewbits.hw", "fewbits.sim")) and getattr(m, "__file__", None)}
    assert Path(sys.modules["fewbits.hw.multiplier"].__file__).resolve() in loaded
    missing = loaded - set(synth_parts.generator_sources())
    assert not missing, sorted(map(str, missing))


def test_digest_follows_a_generator_source(monkeypatch):
    """Changing the bytes of hw/multipliers.py changes the digest (so the part is exported again)."""
    import fewbits.hw.multipliers as mults

    target = Path(mults.__file__).resolve()
    synth_parts.generator_digest.cache_clear()
    before = synth_parts.generator_digest()
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda p: real(p) + (b"# edited\n" if p == target else b""))
    synth_parts.generator_digest.cache_clear()
    try:
        after = synth_parts.generator_digest()
    finally:
        monkeypatch.undo()
        synth_parts.generator_digest.cache_clear()
    assert after != before

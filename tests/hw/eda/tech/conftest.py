"""The SMALL characterized sky130 library, built once (ngspice, about two CPU-minutes) into the
fewbits cache (``$FEWBITS_CACHE/tech/<key>``) and reused by later runs while the PDK, the
settings and the characterizer's sources are unchanged; parallel workers wait on its lock."""

import shutil

import pytest


@pytest.fixture(scope="session")
def small_lib():
    if not shutil.which("ngspice"):
        pytest.fail("ngspice is not installed (make deps installs it): the sky130 tests need it")
    from fewbits.hw.eda.tech import build

    return build.build(build.SMALL, progress=False)

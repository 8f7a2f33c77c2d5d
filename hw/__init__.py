"""fewbits.hw: Amaranth MAC arrays generated from ``fewbits.sim`` formats, Verilog export + manifest.

Nothing is elaborated at import; ``create_mac_array`` is what ``MacSpec.create()`` calls.
"""


def create_mac_array(spec):
    """The ``MacArray`` component for a ``fewbits.sim.MacSpec``."""
    from fewbits.hw.mac import create_mac_array as _create

    return _create(spec)

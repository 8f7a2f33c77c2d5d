"""fewbits: how few bits can the multipliers have, and what does each bit cost?

Subpackages: ``fewbits.sim`` (formats, the bit-exact MAC model),
``fewbits.training``, ``fewbits.hw``, ``fewbits.cosim``.  Importing this
package imports nothing heavy.
"""

__version__ = "0.1.0"

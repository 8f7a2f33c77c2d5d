"""fewbits.cosim: cocotb co-simulation of generated MAC arrays, bit for bit against ``fewbits.sim``.

``verify.verify(design, matmuls, out_dir)`` is the one call: ``vectors`` makes
the matmuls (random, exhaustive, corners, captures), ``tiles`` cuts them into
tiles with their expected codes, ``schedule`` lays the tiles out cycle by cycle,
``runner`` builds the manifest-driven harness (``tbgen``) once per design and
runs the cocotb module ``tb_cocotb`` (``driver``, ``monitor``, ``scoreboard``).
Nothing is imported or built at import time.
"""

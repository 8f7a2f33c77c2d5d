"""Quantized training after Courbariaux, Bengio & David (2014).

The run's formats and range settings come in as one ``fewbits.sim.RunSpec``.
Modules: ``ranges`` (dynamic fixed point range controller), ``qcore`` (quantization points and MAC-contract
matmuls), ``layers`` / ``nets`` (maxout networks), ``update`` (momentum and
stored-parameter update), ``datasets``, ``trainer`` (``train``), ``capture``
(operand/output codes for co-simulation: ``record``, ``load_capture``,
``replay``), ``bench`` and ``reproduce``.  Nothing heavy is imported here.
"""

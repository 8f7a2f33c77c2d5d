"""Quantized training after Courbariaux, Bengio & David (2014).

The run's formats and range settings come in as one ``fewbits.sim.RunSpec``.
Modules: ``ranges`` (dynamic fixed point range controller), ``qcore`` (quantization points and MAC-contract
matmuls), ``lowp`` (any nn.Module under the MAC contract: the one quantized-layer implementation),
``nets`` (the paper's maxout networks, defined on ``lowp``), ``lowpnet`` / ``usernet`` (a converted
model as the trainer's network), ``update`` (momentum and
stored-parameter update), ``datasets``, ``trainer`` (``train``, and ``record``:
train up to one step and capture it), ``capture`` (the ``Recorder`` hook that
keeps a step's operand/output codes; the file format is ``fewbits.sim.capture``),
and ``bench`` (the paper reproduction runs on the sweep engine:
``fewbits.flow.paper``).  Nothing heavy is imported here.
"""

"""Yosys formal equivalence: generated Requantizer / MacUnit vs plain references written from the contract.

The references are deliberately naive Amaranth (remainder comparisons instead of
round/sticky bits, ``*`` and ``<<`` instead of the aligned datapath), written
straight from ``mac_reference``'s definition.  ``prove_*`` run Yosys as a
subprocess: a combinational ``miter -equiv`` + ``sat -verify -prove`` for the
requantizer, and an ``equiv_make``/``equiv_induct`` proof (unbounded: matched
registers are assumed equal and shown to stay equal) for the MAC unit.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw.hwfmt import code_shape
from fewbits.sim import Overflow, Rounding


def _ref_round_div(m, v, s: int, mode: Rounding):
    """round(v / 2**s) by comparing the remainder with half the divisor (s >= 0)."""
    if s <= 0:
        return v << -s
    q = Signal(signed(len(v) + 1), name="ref_q")
    r = Signal(s + 1, name="ref_r")
    m.d.comb += [q.eq(v >> s), r.eq(v - (q << s))]        # v = q * 2**s + r, 0 <= r < 2**s
    half = 1 << (s - 1)
    above, tie, nonzero = r > half, r == half, r != 0
    neg = v < 0
    if mode is Rounding.RNE:
        up = above | (tie & q[0])
    elif mode is Rounding.RNA:
        up = above | (tie & ~neg)
    elif mode is Rounding.RTZ:
        up = neg & nonzero
    else:
        up = 0
    out = Signal(signed(len(v) + 2), name="ref_rounded")
    m.d.comb += out.eq(q + up)
    return out


class RefRequantizer(wiring.Component):
    """Requantization exactly as the contract states it: round(acc * 2**-(facc - fo)), then clamp or wrap."""

    def __init__(self, acc_fmt, out_fmt):
        self.acc_fmt, self.out_fmt = acc_fmt, out_fmt
        super().__init__({"acc": In(signed(acc_fmt.width)), "z": Out(code_shape(out_fmt)), "ovf": Out(1)})

    def elaborate(self, platform):
        m = Module()
        o = self.out_fmt
        r = _ref_round_div(m, self.acc, self.acc_fmt.frac - o.frac, o.round)
        out_of_range = (r < o.min_code) | (r > o.max_code)
        m.d.comb += self.ovf.eq(out_of_range)
        if o.overflow is Overflow.SAT:
            with m.If(r < o.min_code):
                m.d.comb += self.z.eq(o.min_code)
            with m.Elif(r > o.max_code):
                m.d.comb += self.z.eq(o.max_code)
            with m.Else():
                m.d.comb += self.z.eq(r)
        else:
            m.d.comb += self.z.eq(r[: o.width])       # modulo 2**width: the low bits
        return m


class RefDynRequantizer(wiring.Component):
    """Runtime-shift requantization as a case over every shift value, each the static reference.

    ``sticky`` stands for a value strictly between 0 and 1 LSB below ``acc``: for a
    shift >= 1 the reference requantizes ``acc + 1/2`` exactly (every such value
    rounds alike); for a shift <= 0 the contract leaves it out (sim rejects it there).
    """

    def __init__(self, acc_fmt, out_fmt, shift_width: int):
        self.acc_fmt, self.out_fmt, self.shift_width = acc_fmt, out_fmt, shift_width
        super().__init__({"acc": In(signed(acc_fmt.width)), "shift": In(signed(shift_width)),
                          "sticky": In(1), "z": Out(code_shape(out_fmt)), "ovf": Out(1)})

    def elaborate(self, platform):
        import dataclasses

        m = Module()
        lim = 1 << (self.shift_width - 1)
        with m.Switch(self.shift):
            for sh in range(-lim, lim):
                # the contract: requantization shift = acc.frac - out.frac
                out = self.out_fmt.fixed if hasattr(self.out_fmt, "fixed") else self.out_fmt
                out = dataclasses.replace(out, frac=self.acc_fmt.frac - sh)
                if sh >= 1:  # one more fraction bit holds the sticky value exactly
                    half = dataclasses.replace(self.acc_fmt, width=self.acc_fmt.width + 1,
                                               frac=self.acc_fmt.frac + 1)
                    ref = RefRequantizer(half, out)
                    m.d.comb += ref.acc.eq(Cat(self.sticky, self.acc))
                else:
                    ref = RefRequantizer(self.acc_fmt, out)
                    m.d.comb += ref.acc.eq(self.acc)
                m.submodules[f"ref_s{sh + lim}"] = ref
                with m.Case(sh):
                    m.d.comb += [self.z.eq(ref.z), self.ovf.eq(ref.ovf)]
        return m


class RefMacUnit(wiring.Component):
    """One fixed-point PE from the contract: exact product, exact bias, modular sum, one requantization.

    Its registers carry the same names and meaning as ``MacUnit``'s (``p_*`` products,
    ``b_val`` bias, ``a_*`` accumulator, outputs), which is what lets ``equiv_induct`` match them.
    """

    def __init__(self, spec):
        self.spec = spec
        sig = {"in_valid": In(1), "in_first": In(1), "in_last": In(1),
               "a": In(code_shape(spec.a_fmt)), "b": In(code_shape(spec.b_fmt)),
               "bias": In(code_shape(spec.bias_fmt)),
               "out_valid": Out(1), "z": Out(code_shape(spec.out_fmt)), "ovf": Out(1)}
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        s = self.spec
        W = s.acc_fmt.width
        p_valid = Signal(name="p_valid")
        p_first = Signal(name="p_first")
        p_last = Signal(name="p_last")
        a_done = Signal(name="a_done")
        p_val = Signal(signed(W), name="p_val")
        b_val = Signal(signed(W), name="b_val")
        a_val = Signal(signed(W), name="a_val")
        m.d.sync += [p_valid.eq(self.in_valid), p_first.eq(self.in_first), p_last.eq(self.in_last),
                     p_val.eq(self.a * self.b),
                     b_val.eq(self.bias << (s.acc_fmt.frac - s.bias_fmt.frac)),
                     a_done.eq(p_valid & p_last)]
        with m.If(p_valid):
            with m.If(p_first):
                m.d.sync += a_val.eq(b_val + p_val)
            with m.Else():
                m.d.sync += a_val.eq(a_val + p_val)
        m.submodules.ref_rq = rq = RefRequantizer(s.acc_fmt, s.out_fmt)
        m.d.comb += rq.acc.eq(a_val)
        m.d.sync += self.out_valid.eq(a_done)
        with m.If(a_done):
            m.d.sync += [self.z.eq(rq.z), self.ovf.eq(rq.ovf)]
        return m


class FormalError(RuntimeError):
    pass


def _yosys() -> str:
    exe = shutil.which("yosys")
    if exe is None:
        raise FormalError("yosys not found: install it with `apt-get install yosys`")
    return exe


def _run(script: str, workdir: Path, tag: str) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    ys = workdir / f"{tag}.ys"
    ys.write_text(script)
    r = subprocess.run([_yosys(), "-q", "-l", str(workdir / f"{tag}.log"), "-s", str(ys)],
                       capture_output=True, text=True, cwd=workdir, timeout=600)
    log = (workdir / f"{tag}.log").read_text() if (workdir / f"{tag}.log").exists() else r.stdout
    if r.returncode != 0:
        raise FormalError(f"{tag}: not proven equivalent (yosys exit {r.returncode}); see {workdir / (tag + '.log')}")
    return log


def _rtlil(component, name: str, path: Path):
    from amaranth.back import rtlil

    path.write_text(rtlil.convert(component, name=name))


def _read_pair(gate, gold, workdir) -> tuple[Path, str]:
    """Write ``gold`` and ``gate`` as RTLIL; the Yosys lines that read and flatten both."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    _rtlil(gold, "gold", workdir / "gold.il")
    _rtlil(gate, "gate", workdir / "gate.il")
    return workdir, f"""
read_rtlil {workdir / 'gold.il'}
read_rtlil {workdir / 'gate.il'}
proc
flatten gold gate
"""


def prove_requantizer(gate, gold, workdir) -> str:
    """Prove the combinational ``gate`` equals ``gold`` for every input (miter + SAT). Returns the log."""
    workdir, script = _read_pair(gate, gold, workdir)
    script += """opt_clean
miter -equiv -flatten -make_assert -ignore_gold_x gold gate miter
hierarchy -top miter
sat -verify -prove-asserts -set-def-inputs -enable_undef -show-ports miter
"""
    return _run(script, workdir, "requant_equiv")


def prove_multiplier(gate, gold, workdir) -> str:
    """Prove a generated multiplier ``gate`` equals ``gold`` (Yosys's ``*``) for every input (miter + SAT)."""
    workdir, script = _read_pair(gate, gold, workdir)
    script += """opt_clean
miter -equiv -flatten -make_assert gold gate miter
hierarchy -top miter
sat -verify -prove-asserts -show-ports miter
"""
    return _run(script, workdir, "mul_equiv")


def prove_mac_unit(gate, gold, workdir, seq: int = 4) -> str:
    """Prove the sequential ``gate`` equals ``gold`` by induction over matched registers."""
    workdir, script = _read_pair(gate, gold, workdir)
    script += f"""opt -fast
async2sync
equiv_make gold gate equiv
hierarchy -top equiv
equiv_simple -seq {seq}
equiv_induct -seq {seq}
equiv_status -assert
"""
    return _run(script, workdir, "mac_equiv")

"""MacUnit (one processing element) and MacArray (R x C of them): Z = requant(A @ B + bias).

Golden model: ``fewbits.sim.mac_reference`` (``MacSpec.compute``).  One K step
per cycle; ``first`` restarts the accumulator from the bias, ``last`` ends the
tile; results and overflow flags appear ``latency`` cycles after ``last`` with
a one-cycle ``valid`` strobe.  A new tile may start on the cycle after ``last``.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from fewbits.hw import hwfmt
from fewbits.hw.align import FloatAligner, align_static, align_var
from fewbits.hw.fmul import FloatMultiplier, float_fields
from fewbits.hw.fround import FloatRounder
from fewbits.hw.multiplier import Multiplier
from fewbits.hw.packing import element_index
from fewbits.hw.ports import array_ports, shift_widths
from fewbits.hw.requant import Requantizer
from fewbits.sim import MacSpec


def resolve_spec(a_fmt, b_fmt=None, out_fmt=None, acc_fmt=None, bias_fmt=None, rows=1, cols=1, k_max=1024):
    """A validated ``MacSpec`` (sim resolves the accumulator and bias) that hardware can build."""
    if isinstance(a_fmt, MacSpec):
        spec = a_fmt
    else:
        spec = MacSpec(a_fmt, b_fmt, out_fmt, acc_fmt, bias_fmt, rows, cols, k_max)
    if not (1 <= spec.rows <= hwfmt.MAX_DIM and 1 <= spec.cols <= hwfmt.MAX_DIM):
        raise hwfmt.FormatError(f"bad array shape {spec.rows}x{spec.cols}: accepted rows and cols 1..{hwfmt.MAX_DIM}")
    hwfmt.check_formats(spec.a_fmt, spec.b_fmt, spec.out_fmt, spec.acc_fmt, spec.bias_fmt)
    return spec


class PeConfig:
    """Static facts of one PE for a spec (no hardware): dynamic shift, float datapath, latency."""

    def __init__(self, spec: MacSpec):
        self.dynamic = spec.dynamic
        self.float_ops = spec.a_fmt.kind == "float"
        self.float_out = spec.out_fmt.kind == "float"
        # in_shift = fa + fb - fo; in_bias_shift = fa + fb - fbias: the bias's own runtime range
        self.shift_width, self.bias_shift_width = shift_widths(spec) or (None, None)
        # cycles from the cycle ``last`` is presented to the cycle ``out_valid`` is high:
        # product, accumulator, output registers; +1 between a float product and its alignment,
        # +1 inside the float rounder (the longest combinational path otherwise)
        self.latency = 3 + int(self.float_ops) + int(self.float_out)
        self.float_acc = spec.acc_fmt.kind == "facc"
        if self.float_acc:
            from fewbits.hw.facc import FloatAccPE

            self.latency = FloatAccPE.latency


class MacUnit(wiring.Component):
    """One PE: product -> (align) -> accumulate -> requantize, with registers between the stages."""

    golden = "fewbits.sim.mac_reference (one output element, K steps)"

    def __init__(self, spec: MacSpec):
        spec = resolve_spec(spec)
        self.spec = spec
        cfg = PeConfig(spec)
        self.dynamic, self.float_ops, self.shift_width = cfg.dynamic, cfg.float_ops, cfg.shift_width
        self.bias_shift_width = cfg.bias_shift_width
        self.latency = cfg.latency
        sig = {
            "in_valid": In(1), "in_first": In(1), "in_last": In(1),
            "a": In(hwfmt.code_shape(spec.a_fmt)),
            "b": In(hwfmt.code_shape(spec.b_fmt)),
            "bias": In(hwfmt.code_shape(spec.bias_fmt)),
            "out_valid": Out(1),
            "z": Out(hwfmt.code_shape(spec.out_fmt)),
            "ovf": Out(1),
        }
        if self.dynamic:
            sig["shift"] = In(signed(self.shift_width))
            sig["bias_shift"] = In(signed(self.bias_shift_width))
        super().__init__(sig)

    def standard_cases(self):
        from fewbits.hw.cases import standard_tiles

        return standard_tiles(self.spec)

    def random_cases(self, rng, n=6):
        from fewbits.hw.cases import random_tiles

        return random_tiles(self.spec, rng, n)

    # ---- stages ------------------------------------------------------
    def _bias_on_grid(self, m):
        """Bias code -> (accumulator code, nan, +inf, -inf, sticky), combinational from the inputs.

        A dynamic bias moves by ``bias_shift``: left (exact, modulo 2**W) when its grid is
        coarser than the products', else floored, its shifted-out bits kept as ``sticky``.
        """
        acc, bf = self.spec.acc_fmt, self.spec.bias_fmt
        zero = Signal(1, name="b_nospecial")
        if bf.kind in ("fixed", "dfixed"):
            if self.dynamic:
                sw, t = self.bias_shift_width, self.bias_shift
                v = align_var(m, self.bias, t, -(1 << (sw - 1)), (1 << (sw - 1)) - 1,
                              _floor_grid(acc), name="bias_al")
                wb = len(self.bias)
                # -t >= wb shifts every bit out: the same floor and sticky as a shift by wb
                tr = Signal(range(wb + 1), name="bias_tr")
                m.d.comb += tr.eq(Mux(t >= 0, 0, Mux(-t >= wb, wb, -t)))
                sticky = Signal(name="bias_sticky")
                m.d.comb += sticky.eq((self.bias.as_unsigned() & ((Const(1, wb + 1) << tr) - 1)[:wb]).any())
                return v, zero, zero, zero, sticky
            v = align_static(m, self.bias, acc.frac - bf.frac, acc, name="bias_al")
            return v, zero, zero, zero, zero
        s, man, off, nan, inf = float_fields(m, self.bias, bf, "bias")
        vs = Signal(signed(bf.bits_man + 1), name="bias_sv")
        m.d.comb += vs.eq(Mux(s, -man, man))
        d0 = bf.q0 + acc.frac
        emax = (1 << bf.exp) - 2
        t = Signal(signed(max(abs(d0), abs(d0 + emax)).bit_length() + 2), name="bias_t")
        m.d.comb += t.eq(off + d0)
        v = align_var(m, vs, t, d0, d0 + emax, acc, name="bias_al")
        return v, nan, inf & ~s, inf & s, Signal(1, name="b_nosticky")

    def elaborate(self, platform):
        m = Module()
        bias = self._bias_stage(m)
        p = self._multiply(m)
        if self.float_ops:  # the bias is sampled with in_first: delay it alongside the float product
            bias = _delay(m, bias, "b2")
        a = self._accumulate(m, p, bias)
        self._requantize(m, a)
        return m

    # ---- the steps of elaborate --------------------------------------
    def _bias_stage(self, m) -> dict:
        """Registered bias on the accumulator grid with its NaN/inf flags (and sticky bit, dynamic)."""
        W = self.spec.acc_fmt.width
        b = {"val": Signal(signed(W), name="b_val"), "nan": Signal(name="b_nan"),
             "pinf": Signal(name="b_pinf"), "ninf": Signal(name="b_ninf")}
        if self.dynamic:
            b["shift"] = Signal(signed(self.shift_width), name="p_shift")
            m.d.sync += b["shift"].eq(self.shift)
        bv, bn, bpi, bni, bst = self._bias_on_grid(m)
        m.d.sync += [b["val"].eq(bv), b["nan"].eq(bn), b["pinf"].eq(bpi), b["ninf"].eq(bni)]
        if self.dynamic:
            b["sticky"] = Signal(name="b_sticky")
            m.d.sync += b["sticky"].eq(bst)
        return b

    def _multiply(self, m) -> dict:
        """Stage P: the registered product on the accumulator grid, its specials and the control bits
        (a float product takes one more register, stage M, before its alignment)."""
        spec, acc = self.spec, self.spec.acc_fmt
        p = {"valid": Signal(name="p_valid"), "first": Signal(name="p_first"), "last": Signal(name="p_last"),
             "val": Signal(signed(acc.width), name="p_val"), "nan": Signal(name="p_nan"),
             "pinf": Signal(name="p_pinf"), "ninf": Signal(name="p_ninf")}
        if not self.float_ops:
            m.submodules.mul = mul = Multiplier(spec.a_fmt, spec.b_fmt, spec.multiplier)
            m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b)]
            if self.dynamic:
                pv = mul.p  # the accumulator grid is the product grid (checked in hwfmt)
            else:
                pv = align_static(m, mul.p, acc.frac - spec.a_fmt.frac - spec.b_fmt.frac, acc, name="p_al")
            m.d.sync += [p["valid"].eq(self.in_valid), p["first"].eq(self.in_first), p["last"].eq(self.in_last),
                         p["val"].eq(pv)]
            return p
        m.submodules.fmul = fm = FloatMultiplier(spec.a_fmt, spec.b_fmt)
        m.d.comb += [fm.a.eq(self.a), fm.b.eq(self.b)]
        # stage M: registered exact product, then alignment into the accumulator
        m_valid, m_first, m_last = Signal(name="m_valid"), Signal(name="m_first"), Signal(name="m_last")
        m_sign = Signal(name="m_sign")
        m_man = Signal(unsigned(fm.man_width), name="m_man")
        m_exp = Signal(range(fm.exp_max + 1))
        m_nan, m_inf = Signal(name="m_nan"), Signal(name="m_inf")
        m.d.sync += [m_valid.eq(self.in_valid), m_first.eq(self.in_first), m_last.eq(self.in_last),
                     m_sign.eq(fm.sign), m_man.eq(fm.man), m_exp.eq(fm.exp),
                     m_nan.eq(fm.nan), m_inf.eq(fm.inf)]
        m.submodules.align = al = FloatAligner(fm.q0, fm.man_width, fm.exp_max, acc)
        m.d.comb += [al.sign.eq(m_sign), al.man.eq(m_man), al.exp.eq(m_exp)]
        m.d.sync += [p["valid"].eq(m_valid), p["first"].eq(m_first), p["last"].eq(m_last), p["val"].eq(al.acc),
                     p["nan"].eq(m_nan), p["pinf"].eq(m_inf & ~m_sign), p["ninf"].eq(m_inf & m_sign)]
        return p

    def _accumulate(self, m, p: dict, b: dict) -> dict:
        """Stage A: the accumulator (modulo 2**W), restarted from the bias on ``first``, its NaN/inf
        state, and (dynamic) the shift and sticky bit captured with ``first``."""
        spec = self.spec
        a = {"val": Signal(signed(spec.acc_fmt.width), name="a_val"), "nan": Signal(name="a_nan"),
             "pinf": Signal(name="a_pinf"), "ninf": Signal(name="a_ninf"), "done": Signal(name="a_done")}
        base = Mux(p["first"], b["val"], a["val"])
        m.d.sync += a["done"].eq(p["valid"] & p["last"])
        if self.dynamic:
            a["shift"] = Signal(signed(self.shift_width), name="a_shift")
            a["sticky"] = Signal(name="a_sticky")  # the bias had bits below the product grid
        with m.If(p["valid"]):
            m.d.sync += a["val"].eq(base + p["val"])
            if self.float_ops or spec.bias_fmt.kind == "float":
                m.d.sync += [a[k].eq(Mux(p["first"], b[k], a[k]) | p[k]) for k in ("nan", "pinf", "ninf")]
            if self.dynamic:
                with m.If(p["first"]):
                    m.d.sync += [a["shift"].eq(b["shift"]), a["sticky"].eq(b["sticky"])]
        return a

    def _requantize(self, m, a: dict):
        """Stage R: one requantization to the output format into the registered outputs."""
        acc, of = self.spec.acc_fmt, self.spec.out_fmt
        z = Signal(hwfmt.code_shape(of))
        ovf = Signal()
        done = a["done"]
        if of.kind == "float":
            m.submodules.rq = rq = FloatRounder(acc, of, pipelined=True)
            done = Signal(name="r_done")
            m.d.sync += done.eq(a["done"])
            m.d.comb += [rq.acc.eq(a["val"]), rq.nan.eq(a["nan"]), rq.pinf.eq(a["pinf"]), rq.ninf.eq(a["ninf"])]
            m.d.comb += [z.eq(rq.z), ovf.eq(rq.ovf)]
        else:
            m.submodules.rq = rq = Requantizer(acc, of, dynamic=self.dynamic)
            m.d.comb += rq.acc.eq(a["val"])
            if self.dynamic:
                m.d.comb += [rq.shift.eq(a["shift"]), rq.sticky.eq(a["sticky"])]
            is_nan = a["nan"] | (a["pinf"] & a["ninf"])
            with m.If(is_nan):      # Fixed.encode_ovf: NaN -> 0, inf -> saturated, both flagged
                m.d.comb += [z.eq(0), ovf.eq(1)]
            with m.Elif(a["pinf"]):
                m.d.comb += [z.eq(of.max_code), ovf.eq(1)]
            with m.Elif(a["ninf"]):
                m.d.comb += [z.eq(of.min_code), ovf.eq(1)]
            with m.Else():
                m.d.comb += [z.eq(rq.z), ovf.eq(rq.ovf)]
        m.d.sync += self.out_valid.eq(done)
        with m.If(done):
            m.d.sync += [self.z.eq(z), self.ovf.eq(ovf)]


def _delay(m, sigs: dict, prefix: str) -> dict:
    """One register stage on every signal of ``sigs`` (same shapes, named ``<prefix>_<key>``)."""
    out = {}
    for k, sig in sigs.items():
        out[k] = Signal.like(sig, name=f"{prefix}_{k}")
        m.d.sync += out[k].eq(sig)
    return out


def _floor_grid(acc):
    """The accumulator with RDN rounding: a dynamic bias shifted right is floored (its rest is the sticky bit)."""
    import dataclasses

    return dataclasses.replace(acc, round=type(acc.round).RDN)


class MacArray(wiring.Component):
    """R x C MacUnits on broadcast operands: ``in_a`` is column k of A, ``in_b`` row k of B.

    Packing: element i of a vector port at bits ``[i*w +: w]``; ``out_z`` element
    (i, j) at index ``i*C + j``.  ``in_bias``, ``in_shift`` and ``in_bias_shift`` are
    sampled with ``in_first``.
    """

    golden = "fewbits.sim.mac_reference (MacSpec.compute)"

    def __init__(self, spec: MacSpec):
        self.spec = spec = resolve_spec(spec)
        self.rows, self.cols = spec.rows, spec.cols
        self.unit = PeConfig(spec)
        # the signature is hw.ports' list (the manifest is generated back from it); clk/rst come from sync
        flow = {"input": In, "output": Out}
        super().__init__({p.name: flow[p.direction](signed(p.width) if p.role in ("shift", "bias_shift")
                                                    else unsigned(p.width))
                          for p in array_ports(spec) if p.role not in ("clock", "reset")})

    @property
    def latency(self) -> int:
        return self.unit.latency

    def standard_cases(self):
        """Edge tiles (see ``hw.cases.standard_tiles``); golden results: ``hw.cases.expected``."""
        from fewbits.hw.cases import standard_tiles

        return standard_tiles(self.spec)

    def random_cases(self, rng, n=6):
        """Random tiles biased to edge codes, incl. K = 1 and K = k_max."""
        from fewbits.hw.cases import random_tiles

        return random_tiles(self.spec, rng, n)

    @property
    def dynamic(self) -> bool:
        return self.unit.dynamic

    def elaborate(self, platform):
        m = Module()
        s = self.spec
        R, C = s.rows, s.cols
        w = {p.role: p.element_width for p in array_ports(s)}
        wa, wb, wbias, wo = w["a"], w["b"], w["bias"], w["z"]
        for i in range(R):
            for j in range(C):
                pe = make_pe(s)
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += [
                    pe.in_valid.eq(self.in_valid), pe.in_first.eq(self.in_first), pe.in_last.eq(self.in_last),
                    pe.a.eq(self.in_a[i * wa:(i + 1) * wa]),
                    pe.b.eq(self.in_b[j * wb:(j + 1) * wb]),
                    pe.bias.eq(self.in_bias[j * wbias:(j + 1) * wbias]),
                    self.out_z[element_index(i, j, C) * wo:(element_index(i, j, C) + 1) * wo].eq(pe.z),
                    self.out_ovf[element_index(i, j, C)].eq(pe.ovf),
                ]
                if self.dynamic:
                    m.d.comb += [pe.shift.eq(self.in_shift), pe.bias_shift.eq(self.in_bias_shift)]
                if i == 0 and j == 0:
                    m.d.comb += self.out_valid.eq(pe.out_valid)
        return m


def make_pe(spec: MacSpec):
    """The PE of a spec: ``MacUnit`` (a fixed, exact or modular, accumulator) or ``hw.facc.FloatAccPE``
    (a float accumulator); both keep MacUnit's ports and protocol."""
    spec = resolve_spec(spec)
    if spec.acc_fmt.kind == "facc":
        from fewbits.hw.facc import FloatAccPE

        return FloatAccPE(spec)
    return MacUnit(spec)


def create_mac_array(spec: MacSpec) -> MacArray:
    """The MacArray for a MacSpec (what ``MacSpec.create()`` returns); validates before building (a
    rejected spec leaves no half-made component behind for Amaranth to warn about)."""
    return MacArray(resolve_spec(spec))

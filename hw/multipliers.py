"""Multiplier architectures as generated Amaranth: radix-4 Booth and plain AND partial products,
reduced by a Dadda carry-save tree into one final adder.

Why: every design used Yosys's own ``$mul`` mapping; the classic ways to make a multiplier
cheaper are a design axis.  ``yosys`` is ``a * b`` (the default, unchanged).  ``dadda``: one AND
bit per operand-bit pair.  ``booth``: radix-4 Booth digits of ``b`` (−2..2) select ±a or ±2a,
halving the partial products.

Signed operands need no special cases: a bit of *negative* weight ``−x·2^k`` is rewritten as
``(¬x)·2^k − 2^k`` and all the ``−2^k`` are folded into one constant added into the tree.  The
exact product fits the ``wa + wb`` output bits, so arithmetic modulo ``2^(wa+wb)`` is exact.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Signal

ARCHS = ("yosys", "booth", "dadda")


def check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise ValueError(f"unknown multiplier architecture {arch!r}: accepted {', '.join(ARCHS)}")
    return arch


class _Dots:
    """Columns of 1-bit values (the dot diagram) plus a constant, all modulo ``2**n``."""

    def __init__(self, n: int):
        self.n, self.cols, self.const = n, [[] for _ in range(n)], 0

    def add(self, bit, k: int, negative: bool = False):
        if negative:               # -x·2^k = (~x)·2^k - 2^k
            bit, self.const = ~bit, self.const - (1 << k)
        if k < self.n:
            self.cols[k].append(bit)

    def finish(self):
        c = self.const % (1 << self.n)
        for k in range(self.n):
            if c >> k & 1:
                self.cols[k].append(Const(1, 1))


def _bits(v, width: int, signed_: bool, upto: int):
    """Bits 0..upto-1 of ``v`` extended (sign or zero) past ``width``."""
    return [v[min(j, width - 1)] if (j < width or signed_) else Const(0, 1) for j in range(upto)]


def dadda_heights(h: int) -> list[int]:
    seq = [2]
    while seq[-1] < h:
        seq.append(seq[-1] * 3 // 2)
    return [d for d in reversed(seq) if d < h]


def reduce_dadda(m, dots: _Dots):
    """Dadda's reduction: full and half adders until every column holds at most two bits."""
    cols = [list(c) for c in dots.cols]
    n = dots.n
    uid = 0

    def fa(x, y, z):
        nonlocal uid
        s, c = Signal(name=f"fa{uid}_s"), Signal(name=f"fa{uid}_c")
        uid += 1
        m.d.comb += [s.eq(x ^ y ^ z), c.eq((x & y) | (z & (x ^ y)))]
        return s, c

    def ha(x, y):
        nonlocal uid
        s, c = Signal(name=f"ha{uid}_s"), Signal(name=f"ha{uid}_c")
        uid += 1
        m.d.comb += [s.eq(x ^ y), c.eq(x & y)]
        return s, c

    for d in dadda_heights(max((len(c) for c in cols), default=0)):
        new = [[] for _ in range(n)]
        carry_in = [0] * (n + 1)
        for k in range(n):
            col = cols[k]
            i = 0
            # reduce column k (with the carries it will receive) to height d
            while len(col) - i + len(new[k]) + carry_in[k] > d and len(col) - i >= 2:
                if len(col) - i + len(new[k]) + carry_in[k] - d >= 2 and len(col) - i >= 3:
                    s, c = fa(col[i], col[i + 1], col[i + 2])
                    i += 3
                else:
                    s, c = ha(col[i], col[i + 1])
                    i += 2
                new[k].append(s)
                if k + 1 < n:
                    new[k + 1].append(c)
                    carry_in[k + 1] += 1
            new[k].extend(col[i:])
        cols = new
    return cols


def product(m, a, b, wa: int, wb: int, sa: bool, sb: bool, arch: str):
    """The ``wa + wb``-bit product of ``a`` and ``b`` (codes, signed per ``sa``/``sb``) as a Value."""
    n = wa + wb
    dots = _Dots(n)
    if arch == "dadda":
        for i in range(wa):
            for j in range(wb):
                neg = (sa and i == wa - 1) != (sb and j == wb - 1)
                dots.add(a[i] & b[j], i + j, negative=neg)
    elif arch == "booth":
        wbs = wb + (0 if sb else 1)                      # b as a signed number
        bb = _bits(b, wb, sb, wbs + (wbs & 1))
        wx = wa + 2                                      # ±2a fits wa + 2 signed bits
        ax = _bits(a, wa, sa, wx)
        for k in range(len(bb) // 2):
            hi, mid, lo = bb[2 * k + 1], bb[2 * k], (bb[2 * k - 1] if k else Const(0, 1))
            neg = Signal(name=f"booth{k}_neg")
            one = Signal(name=f"booth{k}_one")
            two = Signal(name=f"booth{k}_two")
            m.d.comb += [neg.eq(hi), one.eq(mid ^ lo), two.eq((hi & ~mid & ~lo) | (~hi & mid & lo))]
            for j in range(wx):
                mag = (one & ax[j]) | (two & (ax[j - 1] if j else Const(0, 1)))
                dots.add(mag ^ neg, 2 * k + j, negative=(j == wx - 1))
            dots.add(neg, 2 * k)
    else:
        raise ValueError(f"no generated tree for architecture {arch!r}")
    dots.finish()
    cols = reduce_dadda(m, dots)
    rows = [Cat(*[(c[r] if len(c) > r else Const(0, 1)) for c in cols]) for r in range(2)]
    out = Signal(n, name="tree_sum")
    m.d.comb += out.eq(rows[0] + rows[1])              # the final (carry-propagate) adder
    return out

"""The per-gate switching-energy model that turns toggle counts into joules (``fewbits-45nm-v1``).

Why a model and not a number: Yosys's generic gates have no electrical data,
so every energy figure is only as good as these constants; they live here,
once, with their sources, and every report names the model that made it.

Energy of one toggle (0->1 or 1->0) of a net = 1/2 * C_net * VDD**2, with

    C_net = C_DRIVER[driver type]                       (output diffusion + internal nodes)
          + sum over the net's loads of C_PIN[type][pin] (gate input capacitance)
          + C_WIRE * fanout                             (local interconnect)
          + C_OUTPUT_PORT if the net leaves the design  (assumed to drive one register input)

Clock: each flip-flop's clock pin (C_PIN DFF.C + C_WIRE) and its internal
clock-driven nodes (C_DFF_CLOCK_INTERNAL) switch twice per cycle whatever the
data, reported separately as ``clock`` energy.

Sources and status of the constants (45 nm, VDD 0.9 V, the node and voltage of
Horowitz, "Computing's energy problem", ISSCC 2014):
  * C_PIN: input pin capacitances of the X1 cells of the Nangate 45 nm Open Cell
    Library (typical corner), rounded to 0.05 fF; NAND2_X1 A1/A2 = 1.599/1.664 fF
    were checked against the library text, the other values are from the same
    library's datasheet as remembered and should be re-read from a copy of the
    .lib before they are quoted to more than ~20 %.
  * C_DRIVER, C_WIRE, C_DFF_CLOCK_INTERNAL: fewbits estimates (not library data):
    one input-pin capacitance of self-load for single-stage gates, two for
    two-stage gates (AND/OR/BUF = NAND/NOR + INV), three for XOR/XNOR/MUX
    (transmission-gate or 12-transistor cells), 0.5 fF of wire per fanout.
  * Zero-delay simulation: glitches are not counted (settled values are sampled
    twice per cycle), so data energy is a lower bound for glitchy logic such as
    array multipliers.
With ``--liberty``, the Liberty file's pin capacitances replace C_PIN
(model ``liberty-pincap``); C_DRIVER/C_WIRE stay these estimates.
"""

from __future__ import annotations

NAME = "fewbits-45nm-v1"
VDD = 0.9            # volts
C_WIRE = 0.5         # fF per fanout
C_OUTPUT_PORT = 1.1  # fF: an output is assumed to drive one DFF D pin
C_DFF_CLOCK_INTERNAL = 1.5  # fF switched inside a DFF per clock edge (estimate)

# fF per input pin, Nangate 45 nm OCL X1 cells (see module docstring)
C_PIN = {
    "$_NOT_": {"A": 1.70},             # INV_X1
    "$_BUF_": {"A": 0.95},             # BUF_X1
    "$_AND_": {"A": 0.90, "B": 1.00},  # AND2_X1
    "$_NAND_": {"A": 1.60, "B": 1.65},  # NAND2_X1 (1.599, 1.664)
    "$_OR_": {"A": 0.95, "B": 0.90},   # OR2_X1
    "$_NOR_": {"A": 1.70, "B": 1.65},  # NOR2_X1
    "$_XOR_": {"A": 2.20, "B": 2.35},  # XOR2_X1
    "$_XNOR_": {"A": 2.20, "B": 2.55},  # XNOR2_X1
    "$_MUX_": {"A": 0.95, "B": 0.95, "S": 1.90},  # MUX2_X1
    "$_DFF_P_": {"D": 1.15, "C": 0.95},  # DFF_X1
}
# fF of self-load per output toggle (fewbits estimate, see docstring)
C_DRIVER = {
    "$_NOT_": 1.7, "$_NAND_": 1.6, "$_NOR_": 1.7,
    "$_AND_": 3.0, "$_OR_": 3.0, "$_BUF_": 2.5,
    "$_XOR_": 6.8, "$_XNOR_": 7.0, "$_MUX_": 6.0,
    "$_DFF_P_": 4.0,
    "input": 0.0,   # primary inputs: the driver is outside the design
}


def toggle_energy_fj(c_ff: float) -> float:
    """Energy (fJ) of one toggle of a net of capacitance ``c_ff`` (fF)."""
    return 0.5 * c_ff * VDD * VDD


def describe() -> dict:
    """The model as data, for the JSON record."""
    return {"name": NAME, "vdd": VDD, "c_wire_ff": C_WIRE, "c_output_port_ff": C_OUTPUT_PORT,
            "c_dff_clock_internal_ff": C_DFF_CLOCK_INTERNAL, "c_pin_ff": C_PIN, "c_driver_ff": C_DRIVER,
            "energy": "E = 1/2 C_net VDD^2 per toggle; zero-delay (glitch-free) toggles",
            "source": "fewbits.hw.eda.power_model docstring"}

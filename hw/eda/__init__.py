"""EDA drivers over generated designs: Yosys synthesis, Fmax, formal equivalence, power."""

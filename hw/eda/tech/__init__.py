"""Standard-cell technologies characterized by fewbits (today: SkyWater 130 nm ``sky130_fd_sc_hd``).

Why a subpackage: reading the PDK (``pdk``), simulating cells in ngspice (``spice``), writing
Liberty (``liberty``) and the cached parallel build (``build``) are four separate jobs.  Nothing
here imports the ``sky130`` package (it pulls gdsfactory): its data files are found on disk.
"""

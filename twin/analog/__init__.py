"""The analog core of the twin: neurons, synapses, parameter cells and
correlation sensors (docs/model.md).

kernel     the time-step loop and the output FIFO (numba, cache=True); its input records
steps      an advance's steps in chunks, through the kernel or the co-simulation (twin.cosim)
reference  plain-Python reference of the kernels, for the tests
physics    parameter cells (transfer functions, settling, refresh) and fixed-pattern noise
network    kernel inputs from the register views; the analog state of a chip
"""

"""The chip's event path and readout around the analog core (twin.core.EventCore composes them).

routing     crossbar (loopback, recording, recurrent switch), neuron labels, the queue of input events
generators  background spike generators (regular or Poisson)
fifo        the output event FIFO and its status register
adc         the column ADC (correlation sensors, membranes) and the membrane ADC's sampling
readout     the analog readout multiplexer: probes of the step loop and the readout pad
hooks       register-bus hooks: what a register write or read does to the analog core
"""

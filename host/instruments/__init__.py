"""Lab instruments driven through pyvisa (docs/instruments.md).

`Oscilloscope` opens a scope by VISA resource string -- the twin's virtual
scope (`bss-twin serve --shared --scope PORT`, resource
`TCPIP0::127.0.0.1::PORT::SOCKET`) or a bench scope speaking the same
command subset (Rigol MSO1000Z/DS1000Z) -- arms an edge trigger, runs an
experiment and returns the captured trace in volts and seconds.  Nothing
here touches twin objects: only SCPI over VISA.
"""
from .scope import InstrumentError, Oscilloscope, Trace

__all__ = ["InstrumentError", "Oscilloscope", "Trace"]

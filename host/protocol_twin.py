"""pyserial protocol handler for `twin://PROFILE?serial=N&seed=S`.

Importing `host` registers it, so serial-only code can open an in-process twin:

    import serial, host
    port = serial.serial_for_url("twin://dls?serial=3", timeout=1)
"""
from __future__ import annotations

import serial
from serial.serialutil import PortNotOpenError, SerialBase, SerialException


class Serial(SerialBase):
    def open(self) -> None:
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        if self.is_open:
            raise SerialException("port already open")
        from twin.link import LocalLink

        from .transport import _twin_params

        try:
            profile, serial_no, seed, options = _twin_params(self._port, self._port.split("://", 1)[1])
            self._link = LocalLink(profile, serial_no, seed, **options)
        except ValueError as exc:
            raise SerialException(str(exc)) from exc
        self.is_open = True

    def close(self) -> None:
        if self.is_open:
            self._link.close()
            self.is_open = False

    def from_url(self, url: str) -> str:
        return url

    def _reconfigure_port(self) -> None:
        pass  # baud rate and framing have no meaning for an in-process twin

    @property
    def in_waiting(self) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        return self._link.in_waiting

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        # The twin answers synchronously: what is not here now will not come by waiting.
        return self._link.read(size)

    def write(self, data) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        return self._link.write(bytes(data))

    def reset_input_buffer(self) -> None:
        self._link.read()

    def reset_output_buffer(self) -> None:
        pass


def register() -> None:
    if "host" not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append("host")


register()

"""Make the repository importable when pytest is run without `python -m`;
a twin chip with a virtual scope for the instrument tests."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def scope_server():
    """A ScopeServer on an idle chip (tests feed the scope by hand or advance the chip)."""
    from twin.chip import Chip
    from twin.scope import ScopeServer

    server = ScopeServer(Chip("dls", 1, mismatch=False)).start()
    yield server
    server.stop()


@pytest.fixture
def visa(scope_server):
    """pyvisa resource of the scope (pyvisa-py backend)."""
    pyvisa = pytest.importorskip("pyvisa")
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(scope_server.resource, read_termination="\n", write_termination="\n", timeout=5000)
    yield inst
    inst.close()
    rm.close()

"""ADC code <-> volt accessors of isa.profiles.Analog, checked against the
register docs' statement of the nominal transfer (code = V / adc_v_max * 2**bits)."""
import numpy as np

from isa.profiles import PROFILES


def test_adc_codes_to_volts_follow_the_nominal_transfer():
    for p in PROFILES.values():
        a = p.analog
        full = 2 ** a.madc_bits
        assert a.madc_volts(full // 2) == a.adc_v_max / 2
        assert np.array_equal(a.madc_volts(np.array([0, full], np.uint16)), [0.0, a.adc_v_max])
        assert a.cadc_volts(2 ** a.cadc_bits) == a.adc_v_max
        assert a.madc_lsb * full == a.adc_v_max and a.cadc_lsb * 2 ** a.cadc_bits == a.adc_v_max

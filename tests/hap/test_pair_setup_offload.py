"""Pair-setup's SRP steps as work handed to the adapter: the connection waits for the answer
(its later requests stay queued, in order), the exchange stays held for it meanwhile, and a
connection that goes away mid-step leaves nothing behind. Also: the stepwise modular
exponentiation equals ``pow``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sidecar import tlv8
from sidecar.hap.pairing_tlv import T
from sidecar.hap.srp import N, modexp
from sidecar.hap.status import TlvErrorCode

from .memory import make_harness

M1 = tlv8.encode([(T.STATE, 1), (T.METHOD, 0)])



def test_m1_waits_for_its_offloaded_step_and_holds_the_exchange() -> None:
    h = make_harness()
    first, second = h.peer(), h.peer()
    first.conn.receive_data(first.encode_request("POST", "/pair-setup", M1, "application/pairing+tlv8")
                            + first.encode_request("GET", "/accessories"), h.clock())
    assert first.conn.pending_offload is not None and first.collect() == []  # nothing answered yet
    busy = second.tlv("/pair-setup", M1)  # another controller meanwhile: Busy
    assert tlv8.decode_dict(busy)[T.ERROR][0] == TlvErrorCode.BUSY
    first.run_offloaded()
    m2, refused = first.collect()  # M2 first, then the queued request (refused: not verified)
    assert tlv8.decode_dict(m2.body)[T.STATE][0] == 2 and T.PUBLIC_KEY in tlv8.decode_dict(m2.body)
    assert refused.status == 470


def test_a_connection_gone_mid_step_frees_the_exchange() -> None:
    h = make_harness()
    first, second = h.peer(), h.peer()
    first.conn.receive_data(first.encode_request("POST", "/pair-setup", M1, "application/pairing+tlv8"), h.clock())
    work = first.conn.pending_offload
    assert work is not None
    first.conn.connection_lost()
    first.conn.complete_offload(work.compute(), None, h.clock())  # the worker's late result is dropped
    assert first.collect() == []
    assert tlv8.decode_dict(second.tlv("/pair-setup", M1))[T.STATE][0] == 2  # free for the next controller


def test_offloaded_work_that_raises_answers_500_and_the_connection_goes_on() -> None:
    h = make_harness()
    peer = h.peer()
    peer.conn.receive_data(peer.encode_request("POST", "/pair-setup", M1, "application/pairing+tlv8"), h.clock())
    peer.conn.complete_offload(None, RuntimeError("boom"), h.clock())
    [answer] = peer.collect()
    assert answer.status == 500 and not peer.closed


@given(st.integers(min_value=0, max_value=N - 1), st.integers(min_value=0, max_value=(1 << 600)))
def test_modexp_equals_pow(base: int, exponent: int) -> None:
    assert modexp(base, exponent, N) == pow(base, exponent, N)

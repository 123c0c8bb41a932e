"""decide/admit: every way an attempt can end, decided without Redis."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from reliq import codec
from reliq.errors import LeaseLost, Retry, Terminal
from reliq.service import Policy
from reliq.store.record import ErrorInfo
from reliq.worker.decide import (
    INTERRUPTED,
    Abandon,
    Claimed,
    Complete,
    InvalidInput,
    Park,
    RetryLater,
    admit,
    backoff,
    decide,
)

POLICY = Policy(max_attempts=3, max_deliveries=2, backoff_base=1.0, backoff_max=10.0)


def claimed(attempt: int = 1, crashes: int = 0) -> Claimed:
    return Claimed(
        id="svc.abc",
        entry="1-0",
        epoch=4,
        handler="job",
        payload=b"{}",
        attempt=attempt,
        crashes=crashes,
        deliveries=attempt,
        parent=None,
        key=None,
    )


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as the executor catches it."""
    try:
        raise exc
    except BaseException as e:
        return e


def test_a_returned_value_completes_with_its_result() -> None:
    assert decide(POLICY, claimed(), b'{"ok":1}') == Complete(state="succeeded", result=b'{"ok":1}')


def test_retry_asks_for_its_own_delay_until_attempts_are_exhausted() -> None:
    out = decide(POLICY, claimed(attempt=1), raised(Retry("later", delay=7.5)))
    assert isinstance(out, RetryLater)
    assert out.delay == 7.5
    assert (out.error.type, out.error.message, out.error.status) == ("Retry", "later", None)
    assert "raise exc" in out.error.traceback
    last = decide(POLICY, claimed(attempt=3), raised(Retry(delay=1)))
    assert isinstance(last, Park) and last.reason == "attempts-exhausted" and last.error.type == "Retry"


def test_terminal_parks_at_once_with_its_status() -> None:
    out = decide(POLICY, claimed(attempt=1), raised(Terminal("declined", status=402)))
    assert isinstance(out, Park)
    assert (out.reason, out.error.type, out.error.message, out.error.status) == (
        "terminal",
        "Terminal",
        "declined",
        402,
    )


@pytest.mark.parametrize("attempt", [1, 2])
def test_a_failure_is_retried_after_a_growing_jittered_backoff(attempt: int) -> None:
    out = decide(POLICY, claimed(attempt=attempt), raised(ValueError("boom")))
    assert isinstance(out, RetryLater)
    full = 2.0 ** (attempt - 1)
    assert full / 2 <= out.delay < full
    assert (out.error.type, out.error.message) == ("ValueError", "boom")


def test_the_last_attempt_parks_as_attempts_exhausted() -> None:
    out = decide(POLICY, claimed(attempt=3), raised(TimeoutError()))
    assert isinstance(out, Park) and out.reason == "attempts-exhausted" and out.error.type == "TimeoutError"


def test_backoff_is_capped() -> None:
    assert all(5.0 <= backoff(POLICY, 30) < 10.0 for _ in range(50))


def test_input_that_does_not_decode_parks_as_invalid_input_with_422() -> None:
    try:
        msgspec.json.decode(b'{"n": "x"}', type=dict[str, int])
    except msgspec.ValidationError as e:
        out = decide(POLICY, claimed(), InvalidInput(e))
    assert isinstance(out, Park)
    assert (out.reason, out.error.type, out.error.status) == ("invalid-input", "ValidationError", 422)
    assert "Expected `int`" in out.error.message


def test_a_cancel_request_interrupting_the_handler_runs_it_again_if_it_must_compensate() -> None:
    """(retry.lua ends it cancelled when it has no journal; tests/trees/test_compensation.py)"""
    out = decide(POLICY, claimed(), asyncio.CancelledError(), cancel_requested=True)
    assert out == RetryLater(delay=0, error=INTERRUPTED, interrupted=True)


@pytest.mark.parametrize("cancel_requested", [False, True])
def test_a_lost_lease_abandons_without_writing(cancel_requested: bool) -> None:
    lost = Abandon(reason="lease-lost")
    cancelled = asyncio.CancelledError()
    assert decide(POLICY, claimed(), cancelled, lease_lost=True, cancel_requested=cancel_requested) == lost
    assert decide(POLICY, claimed(), raised(LeaseLost("svc.abc"))) == lost


def test_a_cancellation_nobody_asked_for_is_a_shutdown() -> None:
    assert decide(POLICY, claimed(), asyncio.CancelledError()) == Abandon(reason="shutdown")


def test_a_known_handler_under_its_delivery_limit_may_run() -> None:
    assert admit(POLICY, claimed(crashes=1), "svc") is None


def test_a_crash_loop_parks_before_running_again() -> None:
    out = admit(POLICY, claimed(crashes=2), "svc")
    assert out == Park(
        reason="crash-loop",
        error=ErrorInfo(type="CrashLoop", message="worker died or lost its lease 2 times while running this"),
    )


def test_an_unknown_handler_fails_under_the_default_policy() -> None:
    first = admit(None, claimed(attempt=1), "svc")
    assert isinstance(first, RetryLater)
    assert first.error == ErrorInfo(type="UnknownHandler", message="no handler svc.job")
    assert 0.5 <= first.delay < 1.0
    last = admit(None, claimed(attempt=Policy().max_attempts), "svc")
    assert isinstance(last, Park) and last.reason == "attempts-exhausted"


def test_the_error_document_keeps_its_json_fields() -> None:
    out = decide(POLICY, claimed(), raised(Terminal("no", status=409)))
    assert isinstance(out, Park)
    doc = codec.decode(codec.encode(out.error))
    assert list(doc) == ["type", "message", "traceback", "status"]
    assert (doc["type"], doc["message"], doc["status"]) == ("Terminal", "no", 409)

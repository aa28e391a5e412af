"""The gate takes the process's long-lived objects out of the cycle collector's reach once."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from airflow_provider_qode.quality import gate

VALID = Path(__file__).resolve().parents[1] / "data" / "examples" / "valid_pf_domain_3p_v4.json"


def test_first_batch_freezes_what_is_alive_and_verdicts_do_not_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    item = gate.FetchedInterview("x", VALID.read_bytes())
    before = gate.validate_batch([item]).interviews[0].to_dict()
    gc.unfreeze()
    monkeypatch.setattr(gate, "_imports_frozen", False)
    assert gc.get_freeze_count() == 0
    after = gate.validate_batch([item]).interviews[0].to_dict()
    assert gc.get_freeze_count() > 0
    assert gate._imports_frozen is True
    assert after == before


def test_a_batch_holds_the_collector_and_gives_it_back() -> None:
    """The cycle collector is off while a batch runs, on again after, even when it fails."""
    seen: list[bool] = []

    class Spy(gate.FetchedInterview):
        @property
        def interview(self) -> None:  # read by the gate inside the batch
            seen.append(gc.isenabled())
            return None

        @interview.setter
        def interview(self, _: object) -> None:
            pass

    assert gc.isenabled()
    batch = gate.validate_batch([Spy("x", VALID.read_bytes())])
    assert seen == [False]
    assert gc.isenabled()
    plain = gate.validate_batch([gate.FetchedInterview("x", VALID.read_bytes())])
    assert batch.interviews[0].to_dict() == plain.interviews[0].to_dict()

    with pytest.raises(RuntimeError), gate.collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("the batch failed")
    assert gc.isenabled()


def test_nested_pauses_share_one_and_a_disabled_collector_stays_disabled() -> None:
    with gate.collector_paused():
        with gate.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds it
    assert gc.isenabled()

    gc.disable()
    try:
        with gate.collector_paused():
            pass
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()

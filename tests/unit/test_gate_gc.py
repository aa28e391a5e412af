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

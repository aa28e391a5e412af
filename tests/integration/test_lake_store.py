"""The object store's conditional writes, against moto's S3 server (the ground the index
protocol stands on: if the store stopped refusing these, the protocol could lose updates)."""

from __future__ import annotations

import pytest

from airflow_provider_qode.lake.store import ConditionFailed, ObjectStore


def test_if_match_and_if_none_match_on_put(s3_client, s3_bucket):
    store = ObjectStore(s3_client, s3_bucket)
    first = store.put("_index/x.json", b"1", create=True)
    with pytest.raises(ConditionFailed):
        store.put("_index/x.json", b"again", create=True)  # exists
    second = store.put("_index/x.json", b"2", if_match=first)  # unchanged since read: accepted
    with pytest.raises(ConditionFailed):
        store.put("_index/x.json", b"3", if_match=first)  # changed since read: refused
    with pytest.raises(ConditionFailed):
        store.put("_index/gone.json", b"3", if_match=second)  # deleted since read: refused
    assert store.get("_index/x.json") == (b"2", second)
    assert store.get("_index/gone.json") is None
    assert store.probe_conditional_put("_probes/p") is True
    assert store.list_keys("_probes/") == []

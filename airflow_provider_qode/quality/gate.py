"""The quality gate: one Great Expectations run over a whole batch, then a verdict per interview.

Why one run per batch: a GX context, its suites and its metric graph cost far more than the
rows they check, so the batch is flattened into a handful of tables (``flatten.py``) and each
table is validated once. Each failing row is mapped back to its interview through the table's
``interview`` column and to its rule through the expectation's ``meta``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import sys
import threading
import time
import types
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from airflow_provider_qode.exceptions import QodeError, QodeResponseError
from airflow_provider_qode.models import (
    Interview,
    interview_id_problem,
    parse_interview,
    unexpected_error_reason,
)
from airflow_provider_qode.quality.flatten import TABLES, Flattener, add_derived
from airflow_provider_qode.quality.rules import PARSE_RULE_ID, RULES, Severity
from airflow_provider_qode.quality.suite import CHECKS_BY_ID, build_suite

log = logging.getLogger(__name__)

Verdict = Literal["published", "quarantined"]
PUBLISHED: Verdict = "published"
QUARANTINED: Verdict = "quarantined"

#: Reasons kept per rule and interview; the rest are counted, so a report stays bounded.
MAX_REASONS_PER_RULE = 10

#: Result format of every expectation: all failing row indices, no pandas query strings.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 20,
}


class QualityGateError(QodeError):
    """The gate itself failed (a GX expectation raised): a bug, not a finding about the data."""


@dataclass(frozen=True)
class FetchedInterview:
    """One body to check: the id that was asked for, the raw bytes, and the model if parsed.

    Pass ``interview`` when the caller already ran :func:`parse_interview` on ``raw`` so the gate
    does not parse twice. ``source`` (e.g. a file name) names the item when no id is known.
    """

    requested_id: str | None
    raw: bytes
    interview: Interview | None = None
    source: str | None = None


@dataclass(frozen=True)
class Reason:
    """Why one rule fired for one interview, in words that name the field and its value."""

    rule_id: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule_id, "severity": self.severity.value, "message": self.message}


@dataclass(frozen=True)
class InterviewVerdict:
    """The gate's decision for one interview."""

    position: int
    interview_id: str
    verdict: Verdict
    failed_rules: tuple[str, ...]
    warnings: tuple[str, ...]
    reasons: tuple[Reason, ...]
    requested_id: str | None = None
    payload_interview_id: str | None = None
    source: str | None = None

    @property
    def published(self) -> bool:
        return self.verdict == PUBLISHED

    def reason_texts(self) -> list[str]:
        """``"<rule id>: <message>"`` lines, errors first."""
        return [f"{r.rule_id}: {r.message}" for r in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        return {
            "interview_id": self.interview_id,
            "verdict": self.verdict,
            "failed_rules": list(self.failed_rules),
            "warnings": list(self.warnings),
            "reasons": [r.to_dict() for r in self.reasons],
        }


@dataclass
class BatchVerdict:
    """Verdicts in input order plus the batch's GX validation results (JSON-serialisable)."""

    interviews: list[InterviewVerdict]
    gx_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    table_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def published(self) -> list[InterviewVerdict]:
        return [v for v in self.interviews if v.published]

    @property
    def quarantined(self) -> list[InterviewVerdict]:
        return [v for v in self.interviews if not v.published]

    def by_id(self) -> dict[str, InterviewVerdict]:
        """Verdict per interview id (the last one wins if an id was fetched twice)."""
        return {v.interview_id: v for v in self.interviews}


# --- GX ----------------------------------------------------------------------------------------

#: Modules GX imports at start-up only for expectations the gate never runs (KL divergence and
#: KS tests, their Altair charts): about a third of GX's import time, paid by every cold task.
#: :func:`_import_gx` lets them load on first use instead.
DEFERRED_MODULES = ("scipy.stats", "altair")


class _DeferredModule(types.ModuleType):
    """Stands in for a module until one of its attributes is read, then hands over to it.

    Only ``sys.modules`` holds it, and only while GX is imported: ``import x`` and
    ``from pkg import x`` then bind it without running ``x``. GX's modules keep it as their
    global; the first attribute read imports the real module and every read goes to that.
    """

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def _import_gx() -> Any:
    """Import GX quietly (no analytics, progress bars or INFO chatter), deferring what it can."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "posthog"):
        logging.getLogger(name).setLevel(logging.WARNING)
    stand_ins = {}
    if "great_expectations" not in sys.modules:
        stand_ins = {n: _DeferredModule(n) for n in DEFERRED_MODULES if n not in sys.modules}
        sys.modules.update(stand_ins)
    try:
        import great_expectations as gx
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]

    # GX pins this logger to INFO when it is imported; quiet it afterwards.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    return gx


def _new_context(gx: Any) -> Any:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.config.analytics_enabled = False
    return context


@dataclass(frozen=True)
class _Validators:
    """One ephemeral GX context with a validation definition per table, built once a process."""

    context: Any
    source: Any
    definitions: dict[str, Any]


_build_lock = threading.Lock()
_run_lock = threading.Lock()
_validators: _Validators | None = None


class _ConfigurationMemo:
    """Builds each expectation's ``configuration`` once per run, in the gate's own thread.

    GX 1.x rebuilds an ``ExpectationConfiguration`` (a pydantic ``.dict()``, a camel-to-snake
    regex, a validated model) on every read of ``Expectation.configuration`` and reads it some
    150 times per expectation and run: a third of a run's fixed cost, paid per sub-batch. GX
    only reads the property while validating (it deep-copies before it changes anything), and
    the expectations it builds for a run are not changed during it. The memo holds a reference
    to each expectation it serves, so an ``id`` is never reused within a run; other threads
    always get GX's own property.
    """

    def __init__(self) -> None:
        self._owner: int | None = None
        self._memo: dict[int, tuple[Any, Any]] = {}
        self._original: property | None = None

    def configuration(self, expectation: Any) -> Any:
        original = self._original
        assert original is not None and original.fget is not None
        if threading.get_ident() != self._owner:
            return original.fget(expectation)
        hit = self._memo.get(id(expectation))
        if hit is None:
            hit = (expectation, original.fget(expectation))
            self._memo[id(expectation)] = hit
        return hit[1]

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Memoize in this thread for the ``with`` block (hold ``_run_lock``)."""
        from great_expectations.expectations.expectation import Expectation

        self._original = Expectation.__dict__["configuration"]
        Expectation.configuration = property(self.configuration)  # type: ignore[method-assign,assignment]
        self._owner = threading.get_ident()
        try:
            yield
        finally:
            Expectation.configuration = self._original  # type: ignore[method-assign,assignment]
            self._owner = None
            self._memo.clear()


_configurations = _ConfigurationMemo()


def _build_validators() -> _Validators:
    gx = _import_gx()
    context = _new_context(gx)
    source = context.data_sources.add_pandas("qode_quality")
    definitions = {}
    for table in TABLES:
        asset = source.add_dataframe_asset(table)
        batch_definition = asset.add_batch_definition_whole_dataframe(table)
        suite = context.suites.add(build_suite(gx, table))
        definitions[table] = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"qode_{table}", data=batch_definition, suite=suite)
        )
    return _Validators(context, source, definitions)


def warm_up() -> None:
    """Import GX and build this process's context and suites now, not at the first batch.

    A mapped task calls it in a background thread (``quality.start_warm_up``) before it fetches
    its chunk, so that the imports run while the task waits on the API.
    """
    _shared_validators()


def _shared_validators() -> _Validators:
    global _validators
    with _build_lock:
        if _validators is None:
            _validators = _build_validators()
        return _validators


def run_suites(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Validate each table once, in the process's one ephemeral GX context; table -> result.

    Tables without rows are skipped: there is nothing to check and GX would only add noise.
    The context keeps nothing between batches: each run's stored results and the engine's
    cached batches (the tables) are dropped.
    """
    validators = _shared_validators()
    with _run_lock, _configurations.active():
        results: dict[str, Any] = {}
        store = validators.context.validation_results_store
        try:
            for table in TABLES:
                frame = tables[table]
                if frame.empty:
                    continue
                results[table] = validators.definitions[table].run(
                    batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT
                )
        finally:
            for key in store.list_keys():
                store.remove_key(key)
            batches = validators.source.get_execution_engine().batch_manager
            batches.reset_batch_cache()
            batches.batch_data_cache.clear()
    return results


# --- the gate ----------------------------------------------------------------------------------

#: Whether the objects of the process's imports are out of the cycle collector's reach yet.
_imports_frozen = False


def _freeze_long_lived() -> None:
    """Move every object alive now (imports above all) out of the cycle collector's reach.

    Once a task has imported GX, pandas, Airflow and boto3, half a million objects live until
    the process ends, and every full collection scans them all: while a batch is parsed and
    checked that cost 1 to 2 ms per interview. Frozen objects are still freed when their last
    reference goes; only cyclic garbage alive at this moment stays, once per process.
    """
    global _imports_frozen
    gc.freeze()
    _imports_frozen = "great_expectations" in sys.modules


_pause_lock = threading.Lock()
_pauses = 0
_resume = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Hold the cycle collector while a batch is parsed, flattened and checked.

    A batch allocates millions of short-lived containers (parsed JSON, rows, frames); each
    full collection the allocations trigger scans everything alive, about 70 of them for a
    batch of 10,000, a quarter of its time. Nothing in a batch depends on collecting cycles
    before it ends: they are collected when the last pause ends. Nested and concurrent pauses
    share one; a collector the caller disabled stays disabled.
    """
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


def _placeholder(item: FetchedInterview, position: int) -> str:
    return f"<{item.source}>" if item.source else f"<item {position}>"


def _display_id(item: FetchedInterview, payload_id: str | None, position: int) -> str:
    """Requested id, else the payload's when it is a safe id, else a placeholder."""
    if item.requested_id:
        return item.requested_id
    if payload_id is not None and interview_id_problem(payload_id) is None:
        return payload_id
    return _placeholder(item, position)


def _findings(
    tables: dict[str, pd.DataFrame], results: dict[str, Any]
) -> dict[int, dict[str, list[str]]]:
    """Position -> rule id -> reasons, from every failing row of every expectation."""
    found: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for table, suite_result in results.items():
        frame = tables[table]
        for result in suite_result.results:
            if result.success:
                continue
            meta = result.expectation_config.meta or {}
            check = CHECKS_BY_ID[meta["check_id"]]
            info = result.exception_info or {}
            if info.get("raised_exception"):
                raise QualityGateError(
                    f"GX expectation {check.id} ({check.expectation}) raised: "
                    f"{info.get('exception_message')}"
                )
            indices = result.result.get("unexpected_index_list")
            if indices is None:
                raise QualityGateError(f"GX returned no failing rows for {check.id}")
            if not indices:
                continue
            rows = frame.loc[list(indices)].to_dict("records")
            for row in rows:
                found[int(row["interview"])][check.rule].append(check.reason(row))
    return found


def _verdict(
    position: int,
    item: FetchedInterview,
    payload_id: str | None,
    rules: dict[str, list[str]],
) -> InterviewVerdict:
    failed = sorted(r for r in rules if RULES[r].severity is Severity.ERROR)
    warned = sorted(r for r in rules if RULES[r].severity is Severity.WARN)
    reasons: list[Reason] = []
    for rule_id in (*failed, *warned):
        messages = rules[rule_id]
        severity = RULES[rule_id].severity
        reasons.extend(Reason(rule_id, severity, m) for m in messages[:MAX_REASONS_PER_RULE])
        if len(messages) > MAX_REASONS_PER_RULE:
            more = len(messages) - MAX_REASONS_PER_RULE
            reasons.append(Reason(rule_id, severity, f"... and {more} more like these"))
    return InterviewVerdict(
        position=position,
        interview_id=_display_id(item, payload_id, position),
        verdict=QUARANTINED if failed else PUBLISHED,
        failed_rules=tuple(failed),
        warnings=tuple(warned),
        reasons=tuple(reasons),
        requested_id=item.requested_id,
        payload_interview_id=payload_id,
        source=item.source,
    )


def validate_batch(
    items: Iterable[FetchedInterview], *, redact: Callable[[str], str] | None = None
) -> BatchVerdict:
    """Check every interview of a batch against ``QUALITY_RULES.md`` in one GX run.

    A body that ``parse_interview`` refuses gets ``QR-PARSE`` with the parse error as its reason
    and does not stop the batch. Each model is flattened and then dropped, so memory holds the
    tables, not the models. ``redact`` cleans parse-error texts, which quote the start of the
    body (an HTML page from a gateway may echo the API token there).
    """
    with collector_paused():
        return _validate_batch(items, redact)


def _validate_batch(
    items: Iterable[FetchedInterview], redact: Callable[[str], str] | None
) -> BatchVerdict:
    started = time.perf_counter()
    if not _imports_frozen:
        _freeze_long_lived()
    items = list(items)
    flattener = Flattener()
    payload_ids: list[str | None] = [None] * len(items)
    parse_errors: dict[int, str] = {}
    for position, item in enumerate(items):
        try:
            model = item.interview
            if model is None:
                model = parse_interview(item.raw, item.requested_id)
            flattener.add(position, model, item.requested_id)
        except QodeResponseError as exc:
            parse_errors[position] = str(exc)
            continue
        except Exception as exc:  # last resort: one payload never stops a batch
            name = item.requested_id or _placeholder(item, position)
            parse_errors[position] = unexpected_error_reason(exc, "checking", name)
            log.exception("quality gate: %s", parse_errors[position])
            continue
        payload_ids[position] = model.interview_id
    tables = flattener.tables()
    add_derived(tables)
    results = run_suites(tables) if flattener.count else {}
    if not _imports_frozen:
        _freeze_long_lived()  # GX was first imported just now
    findings = _findings(tables, results)
    for position, rules in flattener.findings.items():
        for rule_id, messages in rules.items():
            findings[position][rule_id].extend(messages)
    for position, message in parse_errors.items():
        findings[position][PARSE_RULE_ID].append(redact(message) if redact else message)
    verdicts = [
        _verdict(position, item, payload_ids[position], findings.get(position, {}))
        for position, item in enumerate(items)
    ]
    seconds = time.perf_counter() - started
    batch = BatchVerdict(
        interviews=verdicts,
        gx_results={table: result.to_json_dict() for table, result in results.items()},
        table_rows={table: len(frame) for table, frame in tables.items()},
        seconds=seconds,
    )
    log.info(
        "quality gate: %d interviews, %d published, %d quarantined in %.1f s",
        len(verdicts),
        len(batch.published),
        len(batch.quarantined),
        seconds,
    )
    return batch

"""The pytest layer: translates pytest events into calls on the eval engine.

- collection: `@goldgate.eval` functions are parametrised over golden cases (ids = case ids);
- before the test bodies: every output the selected cases need is requested in one concurrent
  batch, with the calls of the judges declared on the eval following each answer as it lands, and
  each body runs as soon as its own answers are in (under xdist: per chunk, so each worker knows
  its share up front);
- reports: each case's result rides on `report.user_properties` as plain data, so the controller
  aggregates the same totals with or without xdist;
- after the loop: suite gates decide the exit status by adjusting `session.testsfailed`, the
  pytest-cov `--cov-fail-under` way, so pytest's own exit codes stay meaningful.
"""

from __future__ import annotations

import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pytest

from goldgate.engine.spec import SPEC_ATTR, EvalSpec
from goldgate.errors import GoldgateError, ModelCallError
from goldgate.pytest_plugin.chunks import chunk_of, function_id

SUITE_KEY = pytest.StashKey[Any]()
GROUP_KEY = pytest.StashKey[str]()
NOTES_KEY = pytest.StashKey[dict]()
JUDGED_KEY = pytest.StashKey[bool]()
STATE_KEY = pytest.StashKey["GoldgateSession"]()
_PROP_CASE = "goldgate"
REPEAT_ARG = "goldgate_repeat"
_PROP_SUITE = "goldgate_suite"
_ITEM: ContextVar[pytest.Item | None] = ContextVar("goldgate_item", default=None)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("goldgate", "goldgate evals")
    group.addoption("--goldgate-out", metavar="DIR", help="write summary.json and cases.jsonl to DIR "
                    "(default: a new directory under the project's runs folder)")
    group.addoption("--goldgate-strict", action="store_true",
                    help="every failed or errored case fails the build, not only the suite gates")
    group.addoption("--goldgate-candidate", action="append", default=[], metavar="SLOT=CANDIDATE",
                    help="evaluate CANDIDATE for SLOT instead of the slot's `use` candidate")
    group.addoption("--goldgate-no-progress", action="store_true", help="no progress bar")
    group.addoption("--goldgate-shard", metavar="I/N", help="run only shard I of N of every suite's cases "
                    "(by a stable hash of the case id); `goldgate merge` combines the shards and applies the gates")


def pytest_configure(config: pytest.Config) -> None:
    out = config.getoption("goldgate_out")
    if out and not hasattr(config, "workerinput"):
        from goldgate.files import check_output_dir

        try:
            check_output_dir(Path(out), create=False)  # before the run, not after its calls were paid for
        except GoldgateError as exc:
            raise pytest.UsageError(f"goldgate: --goldgate-out: {exc}") from None
    state = GoldgateSession(config)
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(state, "goldgate-session")
    state.prewarm_calls()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None and state._engine is not None:
        state._engine.abort()  # calls still out when the session ended abnormally
    if "goldgate.calls.pool" in sys.modules:
        sys.modules["goldgate.calls.pool"].discard_prewarmed()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `-n`, give each worker whole chunks of a suite so it can fetch them concurrently."""
    if config.getoption("dist", "no") != "load" or not config.stash[STATE_KEY].has_project():
        return None
    from goldgate.pytest_plugin.xdist import ChunkScheduling

    return ChunkScheduling(config, log)


@pytest.fixture
def case() -> Any:
    """The golden case under test (parametrised by `@goldgate.eval`)."""
    # No `request` argument: even unused, it would enter every eval test's fixture closure.
    item = _ITEM.get()
    raise pytest.UsageError(f"{item.nodeid if item else 'case'}: the `case` fixture needs @goldgate.eval on the test")


@pytest.fixture
def output(case: Any) -> Any:
    """The model slot's prediction for `case.inputs` (requested with the whole batch up front)."""
    # The running item comes from a context variable, not `request`: pytest builds a fixture
    # definition for every `request` it hands out (~45 µs each; they were ~15% of a cached
    # 10,000-case run).
    item = _ITEM.get()
    if item is None or not hasattr(item, "callspec"):
        raise pytest.UsageError("the `output` fixture needs @goldgate.eval(..., model=...) on the test")
    state: GoldgateSession = item.config.stash[STATE_KEY]
    return state.output_for(item, case, item.callspec.params.get(REPEAT_ARG, 0))


@pytest.fixture
def verdicts(case: Any) -> Any:
    """`{judge name: Verdict}` from the judges declared with `@goldgate.eval(..., judges=[...])`,
    made as the case's output landed. A judge that gave no usable verdict makes the case an error."""
    item = _ITEM.get()
    if item is None or not hasattr(item, "callspec"):
        raise pytest.UsageError("the `verdicts` fixture needs @goldgate.eval(..., judges=[...]) on the test")
    state: GoldgateSession = item.config.stash[STATE_KEY]
    return state.verdicts_for(item, case, item.callspec.params.get(REPEAT_ARG, 0))


class GoldgateSession:
    """Per-process plugin state; on the controller it also owns the result collector."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.is_controller = not self.is_worker
        self.strict = bool(config.getoption("goldgate_strict"))
        self._engine: Any = None
        self._collector: Any = None
        self._project_checked: bool | None = None
        self._announced: set[str] = set()
        self._fetched_groups: set[str] = set()
        self._groups: dict[str, list[pytest.Item]] | None = None
        self._case_failures = 0
        self._collect_errors: list[str] = []
        self._fatal: str | None = None  # a config problem met in a test body: it stops the run
        self._started = time.perf_counter()
        self.summary: dict[str, Any] | None = None
        self.shard: Any = None
        if config.getoption("goldgate_shard"):
            from goldgate.engine.shards import parse_shard

            try:
                self.shard = parse_shard(config.getoption("goldgate_shard"))
            except GoldgateError as exc:
                raise pytest.UsageError(f"goldgate: {exc}") from None
        self.run_dir: Path | None = None

    # --- engine -----------------------------------------------------------------------------
    def has_project(self) -> bool:
        if self._project_checked is None:
            from goldgate.project import find_pyproject

            try:
                self._project_checked = find_pyproject(Path(self.config.rootpath)) is not None
            except GoldgateError:
                self._project_checked = True  # a broken one: reported as one line at collection
        return self._project_checked

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from goldgate.config import load_config
            from goldgate.engine.suites import EvalEngine

            overrides = {}
            for item in self.config.getoption("goldgate_candidate"):
                slot, sep, cand = item.partition("=")
                if not sep:
                    raise pytest.UsageError(f"--goldgate-candidate {item!r}: expected SLOT=CANDIDATE")
                overrides[slot] = cand
            cfg = load_config(Path(self.config.rootpath))
            progress = not self.config.getoption("goldgate_no_progress") and not self.is_worker
            workers = int(getattr(self.config, "workerinput", {}).get("workercount", 1))
            self._engine = EvalEngine(cfg, overrides, progress=progress, call_processes=1 if self.is_worker else 0,
                                      concurrency_share=workers, shard=self.shard)
        return self._engine

    def prewarm_calls(self) -> None:
        """With a cold cache, start the call pool now: its litellm import then overlaps pytest's
        start-up and collection. It starts before the config is read (~0.1 s of pydantic) and is
        stopped again if the cache is warm, the config unusable or no candidate an LLM."""
        opt = self.config.option
        if self.is_worker or opt.collectonly or self.config.getoption("dist", "no") != "no" or not self.has_project():
            return
        from goldgate.calls.pool import discard_prewarmed, prewarm
        from goldgate.calls.runner import pool_processes

        prewarm(pool_processes())
        try:
            cfg = self.engine.config
        except GoldgateError:
            discard_prewarmed()
            return  # reported where it matters, at collection
        if cfg.path(cfg.cache).exists() or not any(c.type == "llm" for c in cfg.candidates.values()):
            discard_prewarmed()
        elif pool_processes(cfg.call_processes) != pool_processes():
            discard_prewarmed()
            prewarm(pool_processes(cfg.call_processes))

    @property
    def collector(self) -> Any:
        if self._collector is None:
            from goldgate.engine.suites import ResultCollector

            self._collector = ResultCollector()
        return self._collector

    # --- collection ---------------------------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        spec: EvalSpec | None = getattr(metafunc.function, SPEC_ATTR, None)
        if spec is None:
            return
        try:
            suite = self.engine.suite(spec, metafunc.function.__name__, source=str(metafunc.definition.path),
                                      nodeid=metafunc.definition.nodeid)
        except GoldgateError as exc:
            self._collect_errors.append(f"goldgate: {exc}")
            raise pytest.Collector.CollectError(f"goldgate: {exc}") from None
        metafunc.parametrize("case", suite.cases, ids=[c.id for c in suite.cases])
        if spec.repeats > 1:
            metafunc.fixturenames.append(REPEAT_ARG)  # a pseudo-argument, as pytest-repeat does
            metafunc.parametrize(REPEAT_ARG, range(spec.repeats), ids=[f"r{i}" for i in range(spec.repeats)])

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        for item in items:
            spec = getattr(getattr(item, "function", None), SPEC_ATTR, None)
            # An empty shard slice leaves pytest's "empty parameter set" item, which has no case.
            if spec is not None and hasattr(item, "callspec") and hasattr(item.callspec.params.get("case"), "id"):
                item.stash[SUITE_KEY] = self.engine.suite(spec, item.function.__name__)  # type: ignore[attr-defined]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        callpool = sys.modules.get("goldgate.calls.pool")
        if callpool is not None and not any(SUITE_KEY in item.stash for item in session.items):
            callpool.discard_prewarmed()  # e.g. unit tests in an eval project: litellm is not needed

    # --- fetching outputs ahead of the bodies --------------------------------------------------
    def _wanted(self, items: list[pytest.Item]) -> list[tuple[Any, Any, int]]:
        out = []
        for item in items:
            suite = item.stash.get(SUITE_KEY, None)
            if suite is not None:
                params = item.callspec.params  # type: ignore[attr-defined]
                out.append((suite, params["case"], params.get(REPEAT_ARG, 0)))
        return out

    def _prefetch(self, items: list[pytest.Item], stream: bool = False) -> None:
        wanted = self._wanted(items)
        if not wanted:
            return
        capman = self.config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            with capman.global_and_fixture_disabled():
                self.engine.prefetch(wanted, stream=stream)
        else:
            self.engine.prefetch(wanted, stream=stream)
        if self.is_worker:
            self.config.workeroutput["goldgate_stats"] = dict(self.engine.stats)  # type: ignore[attr-defined]

    def output_for(self, item: pytest.Item, case: Any, repeat: int) -> Any:
        suite = item.stash.get(SUITE_KEY, None)
        if suite is None:
            raise pytest.UsageError(f"{item.nodeid}: the `output` fixture needs @goldgate.eval(..., model=...)")
        if suite.model is None:
            raise pytest.UsageError(f"{item.nodeid}: suite '{suite.name}' has no model=; `output` is undefined")
        if self._groups is None:
            self._groups = self._chunks(item.session.items)
        group = item.stash[GROUP_KEY]
        if group not in self._fetched_groups:
            self._fetched_groups.add(group)
            self._prefetch(self._groups[group])
        return self.engine.require_output(suite, case, repeat)

    def verdicts_for(self, item: pytest.Item, case: Any, repeat: int, *, strict: bool = True) -> dict[str, Any]:
        """The declared judges' verdicts on this case, recorded on it once."""
        suite = item.stash.get(SUITE_KEY, None)
        if suite is None or not suite.judges:
            raise pytest.UsageError(f"{item.nodeid}: the `verdicts` fixture needs @goldgate.eval(..., judges=[...])")
        self.output_for(item, case, repeat)
        judged = self.engine.verdicts(suite, case, repeat)
        if JUDGED_KEY not in item.stash:
            item.stash[JUDGED_KEY] = True
            notes = item.stash.setdefault(NOTES_KEY, {}).setdefault("judges", [])
            notes.extend(v.annotation(judged_item) for v, judged_item in judged)
        errors = [v for v, _ in judged if v.verdict == "error"]
        if errors and strict:
            from goldgate.judges.judge import JudgeError

            raise JudgeError(f"judge '{errors[0].judge}': {errors[0].rationale}")
        return {v.judge: v for v, _ in judged}

    def _chunks(self, items: list[pytest.Item]) -> dict[str, list[pytest.Item]]:
        """The same chunks `ChunkScheduling` sends to workers: contiguous runs of each suite."""
        workers = int(getattr(self.config, "workerinput", {}).get("workercount", 1))
        by_func: dict[str, list[pytest.Item]] = {}
        for it in items:
            if it.stash.get(SUITE_KEY, None) is not None:
                by_func.setdefault(function_id(it.nodeid), []).append(it)
        groups: dict[str, list[pytest.Item]] = {}
        for func, its in by_func.items():
            for i, it in enumerate(its):
                g = f"{func}#{chunk_of(i, len(its), workers)}"
                it.stash[GROUP_KEY] = g
                groups.setdefault(g, []).append(it)
        return groups

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        if self._collect_errors and not self.config.option.collectonly:
            # One clear line, whatever --tb / -r say: the run cannot be trusted without its data.
            raise pytest.UsageError(self._collect_errors[0])
        single = self.is_controller and not self.config.pluginmanager.hasplugin("dsession")
        if single and not self.config.option.collectonly and not session.testsfailed:
            self._groups = self._chunks(session.items)
            self._fetched_groups.update(self._groups)
            try:
                # Answers stream in: each test body runs as soon as its own output has landed.
                self._prefetch([i for group in self._groups.values() for i in group], stream=True)
            except GoldgateError as exc:
                raise pytest.UsageError(f"goldgate: {exc}") from None
        try:
            result = yield
        except BaseException:  # -x, Ctrl-C: the calls nobody will look at are not worth paying for
            if self._engine is not None:
                self._engine.abort()
            if self._fatal is not None:
                raise pytest.UsageError(self._fatal) from None
            raise
        if self._engine is not None:
            try:
                self._engine.settle()
            except GoldgateError as exc:
                raise pytest.UsageError(f"goldgate: {exc}") from None
        # A shard writes its run even when its slice is empty, so the merge sees every shard number.
        if self.is_controller and (self.collector.records or (self.shard is not None and self._engine is not None)):
            self._finish(session)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        token = _ITEM.set(item)
        try:
            return (yield)
        finally:
            _ITEM.reset(token)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        suite = item.stash.get(SUITE_KEY, None)
        if suite is None:
            return (yield)
        from goldgate.judges.annotations import annotating

        if suite.judges and JUDGED_KEY not in item.stash:  # declared judges, body without `verdicts`
            params = item.callspec.params  # type: ignore[attr-defined]
            self.verdicts_for(item, params["case"], params.get(REPEAT_ARG, 0), strict=False)

        with annotating(item.stash.setdefault(NOTES_KEY, {})):
            return (yield)

    # --- reports ------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """A case failure the gates may accept gets a one-line report: rendering thousands of
        assertion tracebacks would cost more than the eval itself."""
        exc = call.excinfo
        if (exc is not None and self._fatal is None and item.stash.get(SUITE_KEY, None) is not None
                and exc.errisinstance(GoldgateError) and not exc.errisinstance(ModelCallError)):
            # The same config mistake would fail every case: stop at the first, with one line.
            self._fatal = f"goldgate: {exc.value}"
            item.session.shouldstop = self._fatal
        if (self.strict or exc is None or item.stash.get(SUITE_KEY, None) is None
                or exc.errisinstance((pytest.skip.Exception, pytest.xfail.Exception))):
            return None
        sections = [(f"Captured {key} {when}", content)
                    for when, key, content in getattr(item, "_report_sections", [])]
        return pytest.TestReport(
            nodeid=item.nodeid, location=item.location, keywords=dict.fromkeys(item.keywords, 1),
            outcome="failed", longrepr=f"{item.nodeid}: {_one_line(exc)}", when=call.when,
            sections=sections, duration=call.duration, start=call.start, stop=call.stop,
            user_properties=item.user_properties,
        )

    @pytest.hookimpl(wrapper=True, specname="pytest_runtest_makereport")
    def pytest_runtest_makereport_attach_record(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        suite = item.stash.get(SUITE_KEY, None)
        if suite is None:
            return report
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.skipped:
                status = "skipped"
            elif report.when == "setup" or (call.excinfo is not None and call.excinfo.errisinstance(ModelCallError)):
                status = "error"  # no usable model/judge answer: an error, never a failure or a pass
            else:
                status = "passed" if report.passed else "failed"
            message = _one_line(call.excinfo) if call.excinfo is not None and status in ("failed", "error") else ""
            params = item.callspec.params  # type: ignore[attr-defined]
            rec = self.engine.record(suite, params["case"], params.get(REPEAT_ARG, 0), status, message,
                                     item.nodeid, item.stash.get(NOTES_KEY, None))
            if suite.name not in self._announced:
                self._announced.add(suite.name)
                report.user_properties.append((_PROP_SUITE, suite.meta()))
            report.user_properties.append((_PROP_CASE, rec))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        for name, value in report.user_properties:
            if name == _PROP_SUITE:
                self.collector.add_suite(value)
            elif name == _PROP_CASE:
                self.collector.add(value)
                if report.failed:
                    self._case_failures += 1

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        stats = getattr(node, "workeroutput", {}).get("goldgate_stats")
        if stats:
            self.collector.add_stats(stats)

    # --- gates and results ---------------------------------------------------------------------
    def _finish(self, session: pytest.Session) -> None:
        from goldgate.engine.results import new_run_id, write_run
        from goldgate.engine.shards import run_provenance
        from goldgate.engine.suites import default_run_dir
        from goldgate.report.html import case_inputs, write_html

        run_id = new_run_id()
        out = self.config.getoption("goldgate_out")
        if not self.config.pluginmanager.hasplugin("dsession"):
            self.collector.add_stats(self.engine.stats)
        extra: dict[str, Any] = {"strict": self.strict, "provenance": run_provenance(self.engine.config)}
        if self.shard is not None:
            extra["shard"] = self.shard.to_dict()
        self.summary = self.collector.summary(run_id, time.perf_counter() - self._started, extra=extra)
        self.run_dir = Path(out) if out else default_run_dir(self.engine.config, run_id)
        judges = sorted({v["judge"] for r in self.collector.records.values() for v in r.get("judges", [])})
        if judges:
            from goldgate.judges.calibration import check_judges

            self.summary["judge_gates"] = check_judges(self.engine.config, judges)
            if any(g["status"] != "pass" for g in self.summary["judge_gates"]):
                self.summary["status"] = "fail"
        write_run(self.run_dir, self.summary, self.collector.records.values())
        cfg = self.engine.config
        inputs = case_inputs(self.summary, goldens_dir=cfg.path(cfg.goldens), root=cfg.root, load=self.engine.golden)
        write_html(self.run_dir, inputs=inputs, root=cfg.root, summary=self.summary,
                   records=sorted(self.collector.records.values(),
                                  key=lambda r: (r["suite"], r["case_id"], r.get("repeat", 0))))
        failing_gates = sum(s["gate"]["status"] == "fail" for s in self.summary["suites"])
        failing_gates += sum(g["status"] != "pass" for g in self.summary.get("judge_gates", []))
        if not self.strict:
            session.testsfailed -= self._case_failures
        if self.shard is None:  # a shard's gates see a slice; `goldgate merge` gates the whole run
            session.testsfailed += failing_gates

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.summary is None:
            return
        from goldgate.report.terminal import render_terminal

        terminalreporter.write_sep("=", "goldgate")
        width = terminalreporter._tw.fullwidth
        terminalreporter.write(render_terminal(self.summary, run_dir=self.run_dir, width=width))


def _one_line(excinfo: Any) -> str:
    text = excinfo.exconly().strip()
    return text.splitlines()[0] if text else excinfo.typename

"""Run this repository's GitHub Actions workflows locally, for the test suite.

The real `.github/workflows/*.yml` files are read (no test copies) and each job's steps run in order,
`run:` steps with bash (`--noprofile --norc -eo pipefail`, like GitHub's default shell) in a fresh
`git clone` of a repository at a given ref. Jobs follow `needs:`; `if:`, `continue-on-error:`, `env:`
(workflow, job, step), `$GITHUB_ENV`, `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY` work as on GitHub,
and `${{ … }}` expressions are evaluated from a `Scenario` (event, inputs, vars, secrets, tokens).

Local equivalents, one per action or command the workflows use (anything else fails by name):
- `actions/checkout`: `git clone` of `Scenario.origin` (the GitHub stand-in's bare repository), then a
  detached checkout of `with.ref` or `github.sha`, into the workspace or `with.path`.
- `actions/setup-python`: the test venv's `bin/` goes first on PATH (its Python must satisfy
  `python-version`).
- `python -m pip install -e ".[extras]"`: the shared test venv is never changed. The step checks that
  every requirement of those extras is installed there, and later steps get `PYTHONPATH=<checkout>/src`,
  which is what an editable install of the checkout gives them: the checkout's goldgate.
- `actions/cache`, `actions/cache/restore`: a folder per key under `Runner.cache_dir` (exact key, else
  the newest key starting with a `restore-keys` prefix); `actions/cache` saves after a successful job.
- `actions/upload-artifact`: a copy under `Runner.artifacts_dir/<name>/`; `actions/download-artifact`:
  this run's artifacts matching `with.name` or `with.pattern`, each into `with.path/<name>/`.
- `strategy.matrix` (one or more keys, lists or `fromJSON(...)`): one job instance per combination,
  one after another, with the `matrix` context; the job fails when any instance does. Job `outputs:`
  are evaluated after the steps and reach later jobs as `needs.<job>.outputs`.
- `actions/create-github-app-token`: checks `client-id` and `private-key` are set and outputs
  `Scenario.app_token` (a token the stand-in knows).
- `gh release create`: a `gh` on PATH that creates the release through the stand-in's REST API.
- `github.token`: `Scenario.tokens["write"]` when the job's permissions grant any write, else
  `Scenario.tokens["read"]` (the stand-in answers 403 to writes with it).
What only GitHub can test: runner images, real tokens and App installation, triggers firing, the
`permissions:` mapping beyond read/write, `concurrency`, `timeout-minutes` on GitHub's clock.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

VENV_BIN = Path(sys.executable).parent
STATUS_FUNCS = ("always(", "success(", "failure(", "cancelled(")
ACTIONS = ("actions/checkout", "actions/setup-python", "actions/cache", "actions/cache/restore",
           "actions/upload-artifact", "actions/download-artifact",
           "actions/create-github-app-token")  # each has a local equivalent below


class Untranslatable(Exception):
    """A workflow construct this runner has no local equivalent for: the test fails naming it."""


class StepFailed(AssertionError):
    pass


@dataclass
class Scenario:
    event_name: str
    origin: Path  # the repository `actions/checkout` clones (the stand-in's bare repo)
    sha: str  # github.sha
    ref: str  # github.ref
    repository: str = "acme/app"
    event: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # {"read": …, "write": …} for github.token
    app_token: str | None = None
    api_url: str = "https://api.github.com"
    run_id: str = "1"
    changed_files: list[str] | None = None  # checked against `on.pull_request.paths`
    env: dict[str, str] = field(default_factory=dict)  # extra process environment (e.g. HF offline)


@dataclass
class StepResult:
    name: str
    outcome: str  # success | failure | skipped
    conclusion: str
    outputs: dict[str, str]
    log: str
    seconds: float = 0.0


@dataclass
class JobResult:
    name: str
    result: str  # success | failure | skipped
    steps: list[StepResult]
    summary: str
    workspace: Path
    outputs: dict[str, str] = field(default_factory=dict)

    def step(self, name: str) -> StepResult:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"no step {name!r} in job {self.name} ({[s.name for s in self.steps]})")

    @property
    def annotations(self) -> list[str]:
        return [line for s in self.steps for line in s.log.splitlines() if re.match(r"::(error|warning|notice)", line)]

    def describe(self) -> str:
        return "\n".join(f"--- {s.name}: {s.outcome} ({s.seconds:.1f} s)\n{s.log[-3000:]}" for s in self.steps)


# --- expressions -----------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[!<>()\[\],.*])"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))")


def _tokens(text: str) -> list[tuple[str, Any]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise Untranslatable(f"expression {text!r}: cannot parse at {text[pos:]!r}")
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind)
        out.append((kind, float(value) if kind == "num" else value[1:-1].replace("''", "'") if kind == "str" else value))
    return out


def _num(v: Any) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v) if v.strip() else 0.0
        except ValueError:
            return float("nan")
    return float("nan")


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()  # GitHub compares strings ignoring case
    if type(a) is type(b) and not isinstance(a, (int, float, bool)):
        return a == b
    return _num(a) == _num(b)


def truthy(v: Any) -> bool:
    return v not in (None, False, 0, "") and not (isinstance(v, float) and math.isnan(v))


def to_str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


class Expr:
    """A small recursive-descent evaluator for the GitHub expression syntax the workflows use."""

    def __init__(self, text: str, contexts: dict[str, Any], funcs: dict[str, Any]):
        self.text, self.toks, self.i = text, _tokens(text), 0
        self.contexts, self.funcs = contexts, funcs

    def value(self) -> Any:
        v = self._or()
        if self.i != len(self.toks):
            raise Untranslatable(f"expression {self.text!r}: unexpected {self.toks[self.i][1]!r}")
        return v

    def _peek(self) -> Any:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def _take(self, op: str | None = None) -> tuple[str, Any]:
        if self.i >= len(self.toks) or (op is not None and self.toks[self.i][1] != op):
            raise Untranslatable(f"expression {self.text!r}: expected {op!r}")
        self.i += 1
        return self.toks[self.i - 1]

    def _or(self) -> Any:
        v = self._and()
        while self._peek() == "||":
            self._take()
            rhs = self._and()
            v = v if truthy(v) else rhs
        return v

    def _and(self) -> Any:
        v = self._cmp()
        while self._peek() == "&&":
            self._take()
            rhs = self._cmp()
            v = rhs if truthy(v) else v
        return v

    def _cmp(self) -> Any:
        v = self._unary()
        while self._peek() in ("==", "!=", "<", ">", "<=", ">="):
            op = self._take()[1]
            rhs = self._unary()
            if op in ("==", "!="):
                v = _eq(v, rhs) == (op == "==")
            else:
                a, b = _num(v), _num(rhs)
                v = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return v

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._primary()

    def _primary(self) -> Any:
        kind, tok = self._take()
        if tok == "(" and kind == "op":
            v = self._or()
            self._take(")")
            return v
        if kind in ("num", "str"):
            return tok
        if kind != "name":
            raise Untranslatable(f"expression {self.text!r}: unexpected {tok!r}")
        if tok in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok]
        if self._peek() == "(":
            self._take()
            args = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take()
            self._take(")")
            if tok not in self.funcs:
                raise Untranslatable(f"expression {self.text!r}: function {tok}() is not translated")
            return self.funcs[tok](*args)
        if tok not in self.contexts:
            raise Untranslatable(f"expression {self.text!r}: context '{tok}' is not translated")
        v = self.contexts[tok]
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                key = self._take()[1]
            else:
                key = self._or()
                self._take("]")
            v = v.get(key) if isinstance(v, dict) else None
        return v


_INTERP = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


# --- the runner ------------------------------------------------------------------------------------
class Runner:
    """`Runner(work_dir).run(".github/workflows/x.yml", scenario)` → {job name: JobResult}."""

    def __init__(self, work: Path, *, cache_dir: Path | None = None, artifacts_dir: Path | None = None,
                 step_timeout_s: float = 900):
        self.work = work
        self.cache_dir = cache_dir or work / "actions-cache"
        self.artifacts_dir = artifacts_dir or work / "artifacts"
        self.step_timeout_s = step_timeout_s
        self.runs = 0

    def run(self, workflow: Path, scenario: Scenario) -> dict[str, JobResult]:
        wf = yaml.safe_load(workflow.read_text(encoding="utf-8"))
        on = wf.get(True, wf.get("on"))  # YAML 1.1 reads the bare key `on` as true
        self._check_trigger(workflow.name, on if isinstance(on, dict) else {on: None}, scenario)
        self.runs += 1
        results: dict[str, JobResult] = {}
        pending = dict(wf["jobs"])
        while pending:
            ready = [n for n, j in pending.items() if all(d in results for d in _list(j.get("needs")))]
            if not ready:
                raise Untranslatable(f"{workflow.name}: jobs {sorted(pending)} wait on unknown needs")
            for name in ready:
                job = pending.pop(name)
                results[name] = self._matrix(workflow, wf, name, job, scenario, results)
        return results

    def _matrix(self, workflow: Path, wf: dict[str, Any], name: str, job: dict[str, Any], sc: Scenario,
                done: dict[str, JobResult]) -> JobResult:
        """One job, or one instance per matrix combination (run in turn); the last instance's
        workspace and outputs stand for the job, and any failed instance fails it."""
        strategy = job.get("strategy")
        if strategy is None:
            return self._job(workflow, wf, name, job, sc, done, {})
        for key in strategy:
            if key not in ("matrix", "fail-fast", "max-parallel"):
                raise Untranslatable(f"{workflow.name}: job {name}: strategy.{key} is not translated")
        needs = {d: {"result": done[d].result, "outputs": done[d].outputs} for d in _list(job.get("needs"))}
        ctx = {"needs": needs, "inputs": sc.inputs, "vars": sc.vars, "github": {"event": sc.event}}
        axes: list[tuple[str, list[Any]]] = []
        for key, values in strategy["matrix"].items():
            if key in ("include", "exclude"):
                raise Untranslatable(f"{workflow.name}: job {name}: strategy.matrix.{key} is not translated")
            if isinstance(values, str):
                m = re.fullmatch(r"\$\{\{(.*)\}\}", values.strip(), re.DOTALL)
                values = Expr(m.group(1) if m else values, ctx, {"fromJSON": json.loads}).value()
            if not isinstance(values, list) or not values:
                raise Untranslatable(f"{workflow.name}: job {name}: strategy.matrix.{key} is not a list: {values!r}")
            axes.append((key, values))
        runs = [dict(zip([k for k, _ in axes], combo)) for combo in itertools.product(*(v for _, v in axes))]
        instances = [self._job(workflow, wf, f"{name}-{i + 1}", job, sc, done, matrix)
                     for i, matrix in enumerate(runs)]
        result = "failure" if any(r.result == "failure" for r in instances) else instances[-1].result
        last = instances[-1]
        return JobResult(name, result, [s for r in instances for s in r.steps], "".join(r.summary for r in instances),
                         last.workspace, last.outputs)

    def _check_trigger(self, wf_name: str, on: dict[str, Any], sc: Scenario) -> None:
        if sc.event_name not in on:
            raise Untranslatable(f"{wf_name}: does not run on '{sc.event_name}' (on: {sorted(on)})")
        spec = on[sc.event_name] or {}
        if sc.event_name == "pull_request" and spec.get("paths"):
            changed = sc.changed_files or []
            if not any(fnmatch.fnmatch(f, p) for f in changed for p in spec["paths"]):
                raise Untranslatable(f"{wf_name}: no changed file {changed} matches on.pull_request.paths")
        if sc.event_name == "push" and sc.ref.startswith("refs/tags/") and "tags" in spec:
            tag = sc.ref.removeprefix("refs/tags/")
            if not any(fnmatch.fnmatch(tag, p) for p in spec["tags"]):
                raise Untranslatable(f"{wf_name}: tag {tag} matches no on.push.tags pattern")

    # -- one job --
    def _job(self, workflow: Path, wf: dict[str, Any], name: str, job: dict[str, Any], sc: Scenario,
             done: dict[str, JobResult], matrix: dict[str, Any]) -> JobResult:
        root = self.work / f"run{self.runs}-{name}"
        workspace, temp = root / "workspace", root / "temp"
        workspace.mkdir(parents=True)
        temp.mkdir()
        for key in ("services", "container", "uses"):
            if key in job:
                raise Untranslatable(f"{workflow.name}: job {name}: '{key}' is not translated")
        needs = {d: {"result": done[d].result, "outputs": done[d].outputs} for d in _list(job.get("needs"))}
        perms = job.get("permissions", wf.get("permissions", {}))
        writes = isinstance(perms, dict) and "write" in perms.values() or perms == "write-all"
        event_path = temp / "event.json"
        event_path.write_text(json.dumps(sc.event), encoding="utf-8")
        github = {"event": sc.event, "event_name": sc.event_name, "sha": sc.sha, "ref": sc.ref,
                  "ref_name": sc.ref.rsplit("/", 1)[-1] if sc.ref.startswith("refs/tags/") else
                  sc.ref.removeprefix("refs/heads/"),
                  "repository": sc.repository, "repository_owner": sc.repository.split("/")[0],
                  "workspace": str(workspace), "run_id": sc.run_id, "run_attempt": "1", "workflow": wf.get("name", workflow.name),
                  "token": sc.tokens.get("write" if writes else "read", ""), "server_url": "https://github.com",
                  "api_url": sc.api_url}
        ctx: dict[str, Any] = {"github": github, "inputs": sc.inputs, "vars": sc.vars, "secrets": sc.secrets,
                               "runner": {"os": "Linux", "temp": str(temp), "arch": "X64"}, "needs": needs,
                               "steps": {}, "env": {}, "matrix": matrix}
        state = {"failed": False}
        funcs = {"always": lambda: True, "success": lambda: not state["failed"],
                 "failure": lambda: state["failed"], "cancelled": lambda: False,
                 "startsWith": lambda a, b: to_str(a).lower().startswith(to_str(b).lower()),
                 "endsWith": lambda a, b: to_str(a).lower().endswith(to_str(b).lower()),
                 "contains": lambda a, b: (to_str(b).lower() in to_str(a).lower()) if not isinstance(a, list)
                 else any(_eq(x, b) for x in a),
                 "hashFiles": lambda *pats: _hash_files(workspace, pats), "fromJSON": json.loads,
                 "toJSON": json.dumps}
        where = f"{workflow.name}: job {name}"

        def ev(text: Any) -> Any:
            return Expr(text, ctx, funcs).value()

        def interp(text: Any, what: str) -> str:
            if not isinstance(text, str):
                return to_str(text)
            try:
                return _INTERP.sub(lambda m: to_str(ev(m.group(1))), text)
            except Untranslatable as exc:
                raise Untranslatable(f"{where}: {what}: {exc}") from None

        def cond(text: Any, what: str) -> bool:
            if text is None:
                return not state["failed"]
            if isinstance(text, bool):
                return text and not state["failed"]
            text = str(text).strip()
            m = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.DOTALL)
            text = m.group(1) if m else text
            if not any(f in text for f in STATUS_FUNCS):
                text = f"success() && ({text})"
            try:
                return truthy(ev(text))
            except Untranslatable as exc:
                raise Untranslatable(f"{where}: {what}: {exc}") from None

        if not cond(job.get("if") if "if" in job else "success()", "if") or any(
                d.result != "success" for d in done.values() if d.name in needs):
            return JobResult(name, "skipped", [], "", workspace)
        env_base = {**os.environ, **sc.env, "CI": "true", "GITHUB_ACTIONS": "true",
                    "GITHUB_WORKSPACE": str(workspace), "GITHUB_REPOSITORY": sc.repository,
                    "GITHUB_EVENT_NAME": sc.event_name, "GITHUB_EVENT_PATH": str(event_path),
                    "GITHUB_SHA": sc.sha, "GITHUB_REF": sc.ref, "GITHUB_REF_NAME": github["ref_name"],
                    "GITHUB_RUN_ID": sc.run_id, "GITHUB_WORKFLOW": str(github["workflow"]),
                    "GITHUB_SERVER_URL": "https://github.com", "GITHUB_API_URL": sc.api_url,
                    "RUNNER_TEMP": str(temp), "RUNNER_OS": "Linux", "HOME": os.environ.get("HOME", str(root))}
        for k in ("PYTHONPATH", "VIRTUAL_ENV", "GITHUB_TOKEN", "GOLDGATE_GITHUB_TOKEN", "GOLDGATE_SIM_URL"):
            env_base.pop(k, None)
        env_base["PATH"] = f"{temp / 'bin'}:{os.environ.get('PATH', '')}"
        _write_gh_shim(temp / "bin")
        job_env: dict[str, str] = {}
        for k, v in {**wf.get("env", {}), **job.get("env", {})}.items():
            ctx["env"] = dict(job_env)
            job_env[k] = interp(v, f"env.{k}")
        ctx["env"] = dict(job_env)
        extra_env = {"PATH": env_base["PATH"]}  # $GITHUB_ENV and the local equivalents' settings
        steps: list[StepResult] = []
        summary: list[str] = []
        pgroups: list[int] = []
        cache_saves: list[tuple[str, str]] = []
        try:
            for i, step in enumerate(job.get("steps", [])):
                label = step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]
                what = f"step {label!r}"
                for key in step:
                    if key not in ("name", "id", "if", "run", "uses", "with", "env", "continue-on-error",
                                   "timeout-minutes"):
                        raise Untranslatable(f"{where}: {what}: '{key}' is not translated")
                ctx["env"] = {**job_env, **extra_env}
                if not cond(step.get("if"), f"{what} if"):
                    res = StepResult(label, "skipped", "skipped", {}, "")
                else:
                    started = time.perf_counter()
                    step_env = {k: interp(v, f"{what} env.{k}") for k, v in (step.get("env") or {}).items()}
                    files = {n: temp / f"{n.lower()}-{i}" for n in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV")}
                    for f in files.values():
                        f.write_text("")
                    env = {**env_base, **job_env, **extra_env, **step_env, **{k: str(v) for k, v in files.items()}}
                    if "run" in step:
                        script = interp(step["run"], what)
                        m = _EDITABLE.fullmatch(script)
                        if m:
                            ok, log = _editable_install(workspace, m.group("extras").split(","))
                            extra_env["PYTHONPATH"] = str(workspace / "src")
                        else:
                            ok, log = self._bash(script, workspace, env, pgroups)
                        outputs = _kv_file(files["GITHUB_OUTPUT"])
                    elif "uses" in step:
                        with_ = {k: interp(v, f"{what} with.{k}") for k, v in (step.get("with") or {}).items()}
                        ok, log, outputs = self._action(where, what, step["uses"], with_, sc, workspace, extra_env,
                                                        cache_saves)
                    else:
                        raise Untranslatable(f"{where}: {what}: neither run nor uses")
                    summary.append(files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8"))
                    extra_env.update(_kv_file(files["GITHUB_ENV"]))
                    outcome = "success" if ok else "failure"
                    keep_going = step.get("continue-on-error", False)
                    if isinstance(keep_going, str):
                        keep_going = truthy(ev(keep_going.strip().removeprefix("${{").removesuffix("}}")))
                    conclusion = "success" if ok or keep_going else "failure"
                    if conclusion == "failure":
                        state["failed"] = True
                    res = StepResult(label, outcome, conclusion, outputs, log, time.perf_counter() - started)
                steps.append(res)
                if step.get("id"):
                    ctx["steps"][step["id"]] = {"outputs": res.outputs, "outcome": res.outcome,
                                                "conclusion": res.conclusion}
        finally:
            for pg in pgroups:  # what a step left running (e.g. the simulator) ends with the job
                try:
                    os.killpg(pg, 15)
                except ProcessLookupError:
                    pass
        if not state["failed"]:
            for key, path in cache_saves:
                dest = self.cache_dir / _safe(key)
                if not dest.exists() and (workspace / path).exists():
                    dest.mkdir(parents=True)
                    _copy(workspace / path, dest / path)
        outputs = {k: interp(v, f"outputs.{k}") for k, v in (job.get("outputs") or {}).items()}
        return JobResult(name, "failure" if state["failed"] else "success", steps, "".join(summary), workspace,
                         outputs)

    def _bash(self, script: str, cwd: Path, env: dict[str, str], pgroups: list[int]) -> tuple[bool, str]:
        proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        pgroups.append(proc.pid)
        try:
            out, _ = proc.communicate(timeout=self.step_timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, _ = proc.communicate()
            return False, out + f"\n[runner] step timed out after {self.step_timeout_s} s"
        return proc.returncode == 0, out

    def _action(self, where: str, what: str, uses: str, with_: dict[str, str], sc: Scenario, workspace: Path,
                extra_env: dict[str, str], cache_saves: list[tuple[str, str]]) -> tuple[bool, str, dict[str, str]]:
        action = uses.split("@")[0]
        if action not in ACTIONS:
            raise Untranslatable(f"{where}: {what}: action '{uses}' has no local equivalent")
        if action == "actions/checkout":
            dest = workspace / with_.get("path", "")
            if dest != workspace and dest.exists():
                shutil.rmtree(dest)
            clone = subprocess.run(["git", "clone", "-q", str(sc.origin), str(dest)] if dest != workspace else
                                   ["git", "clone", "-q", str(sc.origin), "."], cwd=workspace, capture_output=True,
                                   text=True, check=False)
            if clone.returncode:
                return False, clone.stderr, {}
            co = subprocess.run(["git", "checkout", "-q", "--detach", with_.get("ref") or sc.sha], cwd=dest,
                                capture_output=True, text=True, check=False)
            return co.returncode == 0, co.stderr or f"[runner] cloned {sc.origin} at {with_.get('ref') or sc.sha}", {}
        if action == "actions/setup-python":
            want = with_.get("python-version", "")
            have = f"{sys.version_info.major}.{sys.version_info.minor}"
            if want and tuple(map(int, have.split("."))) < tuple(map(int, want.split(".")[:2])):
                return False, f"[runner] the test venv has Python {have}, the workflow wants {want}", {}
            extra_env["PATH"] = f"{VENV_BIN}:{extra_env['PATH']}"
            return True, f"[runner] setup-python → the test venv {VENV_BIN} (Python {have})", {}
        if action in ("actions/cache", "actions/cache/restore"):
            key, path = with_["key"], with_["path"]
            prefixes = [p.strip() for p in with_.get("restore-keys", "").splitlines() if p.strip()]
            hit = self.cache_dir / _safe(key)
            if not hit.exists():  # as GitHub: the restore-keys in order, the newest match of the first that has one
                hit = None
                for prefix in prefixes:
                    older = sorted((p for p in self.cache_dir.glob("*") if p.name.startswith(_safe(prefix))),
                                   key=lambda p: p.stat().st_mtime_ns) if self.cache_dir.exists() else []
                    if older:
                        hit = older[-1]
                        break
            if hit is not None and (hit / path).exists():
                _copy(hit / path, workspace / path)
            if action == "actions/cache":
                cache_saves.append((key, path))
            return True, f"[runner] cache {'restored from ' + hit.name if hit else 'miss'} for {path}", {}
        if action == "actions/upload-artifact":
            dest = self.artifacts_dir / f"run{self.runs}" / with_["name"]
            src = workspace / with_["path"]
            if not src.exists():
                how = with_.get("if-no-files-found", "warn")
                return how != "error", f"[runner] no files at {with_['path']} ({how})", {}
            hidden = with_.get("include-hidden-files", "false") == "true"
            _copy(src, dest if src.is_dir() else dest / src.name, hidden=hidden)  # a folder's contents
            return True, f"[runner] artifact {with_['name']} → {dest}", {}
        if action == "actions/download-artifact":
            run_dir = self.artifacts_dir / f"run{self.runs}"
            wanted = with_.get("pattern") or with_.get("name") or "*"
            found = sorted(p for p in run_dir.glob("*") if fnmatch.fnmatch(p.name, wanted)) if run_dir.exists() else []
            if not found:
                return False, f"[runner] no artifact matches {wanted!r} in this run", {}
            dest = workspace / with_.get("path", ".")
            for art in found:
                _copy(art, dest / art.name if len(found) > 1 or "pattern" in with_ else dest)
            return True, f"[runner] downloaded {[a.name for a in found]} → {dest}", {}
        # actions/create-github-app-token
        if not with_.get("client-id") or not with_.get("private-key"):
            return False, "[runner] create-github-app-token: client-id and private-key are required", {}
        return True, "[runner] App token minted by the stand-in", {"token": sc.app_token or ""}


_EDITABLE = re.compile(r'\s*python -m pip install -e "\.\[(?P<extras>[a-z,-]+)\]"\s*')


def _editable_install(checkout: Path, extras: list[str]) -> tuple[bool, str]:
    """`pip install -e ".[extras]"` without touching the shared venv: check the requirements are there;
    the caller then points PYTHONPATH at the checkout's src/."""
    from packaging.requirements import Requirement

    project = tomllib.loads((checkout / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs, todo, seen = [], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for spec in project.get("optional-dependencies", {}).get(extra, []):
            r = Requirement(spec)
            if r.name == project["name"]:
                todo += sorted(r.extras)
            else:
                reqs.append(r)
    missing = []
    for r in [*map(Requirement, project.get("dependencies", [])), *reqs]:
        try:
            if not r.specifier.contains(metadata.version(r.name), prereleases=True):
                missing.append(f"{r} (have {metadata.version(r.name)})")
        except metadata.PackageNotFoundError:
            missing.append(str(r))
    if missing:
        return False, f"[runner] the test venv lacks: {', '.join(missing)}"
    return True, (f"[runner] editable install of the checkout → PYTHONPATH={checkout / 'src'} (the test venv has "
                  f"every requirement of {', '.join(extras)})")


def _kv_file(path: Path) -> dict[str, str]:
    """`name=value` lines and `name<<DELIM` … `DELIM` blocks, as GitHub reads its command files."""
    out: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            j = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1:j])
            i = j + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


def _hash_files(workspace: Path, patterns: tuple[Any, ...]) -> str:
    files = sorted({p for pat in patterns for p in workspace.glob(str(pat)) if p.is_file()})
    if not files:
        return ""
    h = hashlib.sha256()
    for f in files:
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _list(v: Any) -> list[str]:
    return [] if v is None else [v] if isinstance(v, str) else list(v)


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


def _copy(src: Path, dest: Path, hidden: bool = True) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest, dirs_exist_ok=True,
                        ignore=None if hidden else shutil.ignore_patterns(".*"))
    else:
        shutil.copy2(src, dest)


_GH = '''#!{python}
"""`gh release create TAG --repo OWNER/NAME [--generate-notes] [--verify-tag]`, against $GITHUB_API_URL."""
import json, os, sys, urllib.request, urllib.error
args = sys.argv[1:]
if args[:2] != ["release", "create"] or "--repo" not in args:
    sys.exit(f"gh (local runner): only `gh release create TAG --repo R` is translated, not {{args}}")
tag, repo = args[2], args[args.index("--repo") + 1]
body = {{"tag_name": tag, "generate_release_notes": "--generate-notes" in args, "verify_tag": "--verify-tag" in args}}
req = urllib.request.Request(f"{{os.environ['GITHUB_API_URL']}}/repos/{{repo}}/releases", json.dumps(body).encode(),
                             {{"Authorization": f"token {{os.environ.get('GH_TOKEN', '')}}",
                              "Content-Type": "application/json"}}, method="POST")
try:
    print(json.load(urllib.request.urlopen(req))["html_url"])
except urllib.error.HTTPError as exc:
    sys.exit(f"HTTP {{exc.code}}: {{exc.read().decode()}}")
'''


def _write_gh_shim(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(_GH.format(python=sys.executable), encoding="utf-8")
    gh.chmod(0o755)

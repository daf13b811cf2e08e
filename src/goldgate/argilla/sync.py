"""Goldens kept in step with an Argilla dataset: push records and suggestions, pull human answers back.

The golden JSONL in git stays the source of truth that CI reads; Argilla is where people validate.
A lock file next to each golden (`<name>.argilla.lock.json`) remembers, per record, the content
hash of the local record and of the remote decision at the last sync, so both directions move only
what changed and a record changed on both sides is reported as a conflict instead of being
overwritten. Pulls read everything first and write the golden atomically at the end: an outage
mid-pull leaves the files as they were. The argilla SDK is imported only inside `SyncSession`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from goldgate.argilla.agreement import Decision, decide, decode_answer, krippendorff_alpha
from goldgate.argilla.lock import Lock, content_hash, load_lock, local_hash, lock_path, save_lock
from goldgate.argilla.schema import (
    Schema,
    check_remote_schema,
    infer_schema,
    settings_for,
)
from goldgate.argilla.settings import (
    ArgillaSettings,
    ArgillaSyncError,
    Rule,
    Target,
    resolve_target,
    sdk,
)
from goldgate.config import DEFAULT_SPLITS
from goldgate.errors import ConfigError
from goldgate.goldens.records import Case, GoldenSet

if TYPE_CHECKING:
    import argilla as rg

    from goldgate.config import Config

__all__ = ["StatusReport", "SyncResult", "SyncSession"]

GOLDEN_AGENT = "goldgate:expected"  # suggestions that show the current golden label, not an LLM's


@dataclass
class SyncResult:
    action: str
    target: str
    sent: int = 0
    unchanged: int = 0
    updated: int = 0
    added: int = 0
    removed: int = 0
    disagreements: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    agreement: dict[str, tuple[float | None, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    pushed_ids: list[str] = field(default_factory=list)

    def render(self) -> str:
        if self.action == "pull":
            head = (f"pulled {self.target}: {self.updated} updated, {self.added} added, {self.removed} removed "
                    f"(discarded), {self.unchanged} unchanged")
        else:
            head = f"{self.action} {self.target}: {self.sent} sent, {self.unchanged} unchanged"
        lines = [head, *self.notes]
        for key, (alpha, units) in sorted(self.agreement.items()):
            shown = "n/a" if alpha is None else f"{alpha:.3f}"
            lines.append(f"  inter-annotator agreement on {key}: Krippendorff's alpha = {shown} over {units} records")
        if self.disagreements:
            lines.append(f"  {len(self.disagreements)} record(s) without agreement left as they were: "
                         + ", ".join(self.disagreements[:10]))
        if self.conflicts:
            lines.append(f"  {len(self.conflicts)} conflict(s), changed locally and in Argilla, not touched "
                         f"(resolve with --prefer local|remote): " + ", ".join(self.conflicts[:10]))
        return "\n".join(lines)


@dataclass
class StatusReport:
    target: str
    in_sync: int = 0
    local_only: list[str] = field(default_factory=list)
    remote_only: list[str] = field(default_factory=list)
    local_changed: list[str] = field(default_factory=list)
    remote_changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"{self.target}: {self.in_sync} in sync"]
        for label, ids, hint in (
            ("local-only", self.local_only, "goldgate argilla push"),
            ("changed locally", self.local_changed, "goldgate argilla push"),
            ("remote-only", self.remote_only, "goldgate argilla pull"),
            ("changed in Argilla", self.remote_changed, "goldgate argilla pull"),
            ("conflicts (changed on both sides)", self.conflicts, "--prefer local|remote"),
        ):
            if ids:
                more = f" (+{len(ids) - 10} more)" if len(ids) > 10 else ""
                lines.append(f"  {label}: {len(ids)} [{hint}]: {', '.join(ids[:10])}{more}")
        return "\n".join(lines)


# -- the session ----------------------------------------------------------------------------------


@dataclass
class _Remote:
    """One remote record as plain data: its server id, fields, suggestions and decision."""

    id: str
    server_id: str
    fields: dict[str, Any]
    metadata: dict[str, Any]
    suggestions: dict[str, tuple[Any, str | None]]  # question name → (value, agent)
    decision: Decision
    updated_at: str


class SyncSession:
    """One golden set and the Argilla dataset it syncs with."""

    def __init__(self, settings: ArgillaSettings, cfg: Config | None, golden_path: Path, target: Target,
                 dataset: str) -> None:
        self.settings = settings
        self.cfg = cfg
        self.golden_path = golden_path
        self.target = target
        self.dataset_name = dataset
        self.lock_file = lock_path(golden_path)
        self._client: rg.Argilla | None = None

    @classmethod
    def open(cls, settings: ArgillaSettings, cfg: Config | None, *, golden: str, dataset: str | None,
             state_dir: Path | None = None) -> SyncSession:
        from goldgate.goldens.records import resolve_golden_path

        root = cfg.root if cfg else Path.cwd()
        goldens_dir = cfg.path(cfg.goldens) if cfg else root
        path = resolve_golden_path(golden, goldens_dir=goldens_dir, root=root)
        target = resolve_target(settings, cfg, state_dir)
        lock = load_lock(lock_path(path))
        return cls(settings, cfg, path, target, dataset or (lock.dataset if lock else path.stem))

    # -- public operations ----------------------------------------------------------------------

    def status(self) -> StatusReport:
        golden = self._golden()
        lock = self._lock_for(self._dataset(required=False))
        report = StatusReport(self._where())
        remote = self._fetch(lock, schema=Schema.from_dict(lock.schema), since=lock.pulled_at) if lock else {}
        local = {c.id: c.to_record() for c in golden}
        entries = lock.records if lock else {}
        for cid, rec in local.items():
            entry = entries.get(cid)
            if entry is None:
                report.local_only.append(cid)
                continue
            lchanged = local_hash(rec) != entry["local"]
            r = remote.get(cid)
            rchanged = r is not None and r.decision.hash != entry["remote"] and r.decision.kind != "disagree"
            if lchanged and rchanged:
                report.conflicts.append(cid)
            elif lchanged:
                report.local_changed.append(cid)
            elif rchanged:
                report.remote_changed.append(cid)
            else:
                report.in_sync += 1
        report.remote_only = sorted(
            {cid for cid, r in remote.items() if cid not in local and r.decision.kind != "discarded"}
            | {cid for cid in entries if cid not in local})
        return report

    def push(self, *, suggestions: Path | None = None, hide_suggestions: Iterable[str] = (),
             slot: str | None = None, prefer: str | None = None) -> SyncResult:
        golden = self._golden()
        labels, label_key = self._labels(slot)
        schema = infer_schema(golden, labels=labels, label_key=label_key)
        dataset = self._ensure_dataset(schema)
        lock = self._lock_for(dataset) or self._new_lock(dataset, schema)
        outputs = _run_outputs(suggestions, {c.id for c in golden}) if suggestions else {}
        hidden = set(hide_suggestions)
        sugg = {c.id: {} if c.split in hidden else self._suggestions(c, schema, outputs.get(c.id), label_key)
                for c in golden}
        result = SyncResult("pushed", self._where())
        self._upsert(golden, sugg, dataset, lock, prefer, result)
        return result

    def push_candidates(self, run_dir: Path, *, split: str = "pool", slot: str | None = None) -> SyncResult:
        """Send a run's LLM outputs for unlabelled records of `split` as suggestions to be validated."""
        golden = self._golden()
        pool = [c for c in golden if c.split == split and _unlabelled(c)]
        outputs = _run_outputs(run_dir, {c.id for c in pool})
        result = self._push_outputs(golden, [c for c in pool if c.id in outputs], outputs, slot,
                                    "pushed candidates to")
        skipped = len(pool) - len(result.pushed_ids)
        if skipped:
            result.notes.append(f"  {skipped} unlabelled record(s) had no output in {run_dir}")
        return result

    def push_selected(self, outputs: dict[str, dict[str, Any]], ids: Iterable[str], *,
                      slot: str | None = None, test_split: str = "test") -> SyncResult:
        """Send chosen unlabelled golden records (`goldgate plan --select`), each with the LLM's answer in
        `outputs` ({label, text, agent, score}) as its suggestion; test-split or labelled ids are refused."""
        golden = self._golden()
        wanted = list(dict.fromkeys(ids))
        unknown = [i for i in wanted if i not in {c.id for c in golden}]
        if unknown:
            raise ArgillaSyncError(f"{self.golden_path}: {len(unknown)} selected record(s) are not in the golden "
                                   f"(e.g. {unknown[0]})")
        cases = [golden.get(i) for i in wanted]
        bad = [c.id for c in cases if c.split == test_split or not _unlabelled(c)]
        if bad:
            raise ArgillaSyncError(f"{self.golden_path}: refusing to push {len(bad)} test-split or labelled "
                                   f"record(s) as candidates (e.g. {bad[0]})")
        return self._push_outputs(golden, cases, outputs, slot, "pushed the next batch to")

    def _push_outputs(self, golden: GoldenSet, cases: list[Case], outputs: dict[str, dict[str, Any]],
                      slot: str | None, action: str) -> SyncResult:
        labels, label_key = self._labels(slot)
        schema = infer_schema(golden, labels=labels, label_key=label_key)
        dataset = self._ensure_dataset(schema)
        lock = self._lock_for(dataset) or self._new_lock(dataset, schema)
        sugg = {c.id: self._suggestions(c, schema, outputs[c.id], label_key) if c.id in outputs else {}
                for c in cases}
        result = SyncResult(action, self._where())
        self._upsert(cases, sugg, dataset, lock, None, result)
        result.pushed_ids = [c.id for c in cases]
        return result

    def _upsert(self, cases: Iterable[Case], sugg: dict[str, dict[str, Any]], dataset: rg.Dataset, lock: Lock,
                prefer: str | None, result: SyncResult) -> None:
        """Send the records (and suggestions) that changed since the lock; conflicts stay put."""
        schema = Schema.from_dict(lock.schema)
        remote = self._fetch(lock, schema=schema, since=lock.pulled_at) if lock.records else {}
        batch, entries = [], {}
        for case in cases:
            local, entry = local_hash(case.to_record()), lock.records.get(case.id)
            sent, suggested = content_hash([local, case.provenance.get("source")]), _suggestion_hash(sugg[case.id])
            if entry and entry.get("sent") == sent and (not suggested or entry.get("suggested") == suggested):
                result.unchanged += 1
                continue
            r = remote.get(case.id)
            if (entry and r and r.decision.hash != entry["remote"] and local != entry["local"]
                    and prefer != "local"):
                result.conflicts.append(case.id)
                continue
            batch.append(self._record(case, schema, sugg[case.id]))
            entries[case.id] = {"local": local, "remote": r.decision.hash if r else (entry or {}).get("remote", ""),
                                "sent": sent, "suggested": suggested or (entry or {}).get("suggested", "")}
        self._log(dataset, batch, "pushing")
        lock.records.update(entries)
        result.sent = len(batch)
        save_lock(self.lock_file, lock)

    def pull(self, *, rule: Rule | None = None, min_submitted: int | None = None, prefer: str | None = None,
             full: bool = False) -> SyncResult:
        from goldgate.goldens.records import write_goldens

        rule = rule or self.settings.rule
        min_submitted = min_submitted or self.settings.min_submitted
        golden = self._golden()
        dataset = self._dataset(required=True)
        lock = self._lock_for(dataset)
        if lock is None:
            raise ArgillaSyncError(f"{self.lock_file}: no lock for this golden; run `goldgate argilla push` first")
        schema = Schema.from_dict(lock.schema)
        check_remote_schema(schema, dataset, str(self.golden_path))
        since = None if full else lock.pulled_at
        remote = self._fetch(lock, schema=schema, rule=rule, min_submitted=min_submitted, since=since)
        result = SyncResult("pull", self._where())
        records = {c.id: c.to_record() for c in golden}
        usernames = self._usernames()
        units: dict[str, list[list[Any]]] = {}
        for cid, r in sorted(remote.items()):
            for key, votes in r.decision.votes.items():
                if len(votes) >= 2:
                    units.setdefault(key, []).append(votes)
            entry = lock.records.get(cid)
            if entry is not None and r.decision.hash == entry["remote"]:
                continue
            if r.decision.kind == "none":
                continue
            if r.decision.kind == "disagree":
                result.disagreements.append(cid)
                continue
            local = records.get(cid)
            lchanged = local is not None and entry is not None and local_hash(local) != entry["local"]
            if lchanged and prefer != "remote":
                if prefer == "local":
                    entry["remote"] = r.decision.hash
                else:
                    result.conflicts.append(cid)
                continue
            if r.decision.kind == "discarded":
                if records.pop(cid, None) is not None:
                    result.removed += 1
                lock.records.pop(cid, None)
                continue
            new = self._apply(local, r, schema, usernames)
            if local is None:
                result.added += 1
            elif new != local:
                result.updated += 1
            records[cid] = new
            # What Argilla holds for this record now matches the golden: a plain push has nothing to send.
            case = Case(cid, new["inputs"], new["expected"], new["metadata"], new["provenance"])
            lock.records[cid] = {"local": local_hash(new), "remote": r.decision.hash,
                                 "sent": content_hash([local_hash(new), new["provenance"].get("source")]),
                                 "suggested": _suggestion_hash(self._suggestions(case, schema, None, "label"))}
        result.unchanged = len(records) - result.updated - result.added
        result.agreement = {k: (krippendorff_alpha(v), len(v)) for k, v in units.items()}
        # The next incremental pull starts at the oldest record left unresolved, so none is forgotten.
        unresolved = [remote[c].updated_at for c in result.conflicts + result.disagreements]
        if remote:
            lock.pulled_at = min(unresolved) if unresolved else max(r.updated_at for r in remote.values())
        write_goldens(self.golden_path, records.values(),
                      splits=self.cfg.splits if self.cfg else list(DEFAULT_SPLITS))
        save_lock(self.lock_file, lock)
        return result

    # -- golden side ----------------------------------------------------------------------------

    def _golden(self) -> GoldenSet:
        from goldgate.goldens.records import load_goldens

        splits = self.cfg.splits if self.cfg else list(DEFAULT_SPLITS)
        return load_goldens(self.golden_path, splits=splits)

    def _labels(self, slot: str | None) -> tuple[list[str] | None, str]:
        if slot is None:
            return None, "label"
        if self.cfg is None:
            raise ConfigError("--slot needs a pyproject.toml with [tool.goldgate.slots]")
        return self.cfg.labels_for(slot), self.cfg.slot(slot).output_field

    def _suggestions(self, case: Case, schema: Schema, output: dict[str, Any] | None,
                     label_key: str) -> dict[str, tuple[Any, str | None, float | None]]:
        """Question name → (value, agent, score): the run's output if given, else the current label."""
        out: dict[str, tuple[Any, str | None, float | None]] = {}
        if output is not None:
            q = schema.question_for(label_key) or (schema.questions[0] if len(schema.questions) == 1 else None)
            value = output["label"] if q and q.kind in ("label", "multi_label") else output.get("text")
            if q and value is not None and (q.kind != "label" or value in q.labels):
                out[q.name] = (value, output["agent"], output.get("score"))
            return out
        for q in schema.questions:
            if q.key in case.expected:
                out[q.name] = (case.expected[q.key], GOLDEN_AGENT, None)
        return out

    def _record(self, case: Case, schema: Schema, sugg: dict[str, tuple[Any, str | None, float | None]]) -> rg.Record:
        rg = sdk()

        fields = {n: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                  for n, k in schema.fields.items() if (v := case.inputs.get(k)) is not None}
        return rg.Record(
            id=case.id,
            fields=fields,
            metadata={"split": case.split, "source": case.provenance.get("source", "human")},
            suggestions=[rg.Suggestion(question_name=n, value=v, agent=a, score=s) for n, (v, a, s) in sugg.items()],
        )

    def _apply(self, local: dict[str, Any] | None, r: _Remote, schema: Schema, usernames: dict[str, str]) -> dict[str, Any]:
        """The golden record after a labelled decision; LLM suggestions that people changed → llm-corrected."""
        names = sorted(usernames.get(u, u) for u in r.decision.annotators)
        corrected, validated = [], []
        for q in schema.questions:
            value, agent = r.suggestions.get(q.name, (None, None))
            if agent in (None, GOLDEN_AGENT) or q.key not in r.decision.expected:
                continue
            (validated if decode_answer(q, value) == r.decision.expected[q.key] else corrected).append((q.key, value, agent))
        if local is None:
            inputs = {k: r.fields.get(n) for n, k in schema.fields.items() if n in r.fields}
            local = {"id": r.id, "inputs": inputs, "expected": {},
                     "metadata": {"split": r.metadata.get("split", "pool")}, "provenance": {}}
        provenance = {k: v for k, v in local["provenance"].items() if k not in ("llm",)}
        provenance.update(source="llm-corrected" if corrected else "human", annotators=names,
                          argilla_record_id=r.server_id)
        if corrected or validated:
            provenance["llm"] = {k: {"model": a, "suggested": v} for k, v, a in corrected + validated}
        return {**local, "expected": {**local["expected"], **r.decision.expected}, "provenance": provenance}

    # -- Argilla side ---------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.golden_path.name} <-> {self.target.url} {self.target.workspace}/{self.dataset_name}"

    @property
    def client(self) -> rg.Argilla:
        if self._client is None:
            rg = sdk()

            import httpx

            with self._errors("connecting"):
                # No keep-alive: each batch opens its own connection, so a server running several
                # processes (uvicorn workers) spreads concurrent batches over them instead of
                # pinning both connections to whichever process accepted them first.
                self._client = rg.Argilla(api_url=self.target.url, api_key=self.target.api_key, timeout=60,
                                          retries=0, limits=httpx.Limits(max_keepalive_connections=0))
        return self._client

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Translate SDK/HTTP failures into one line; the key is never part of the message."""
        import httpx
        from argilla._exceptions import ArgillaAPIError, ArgillaCredentialsError, ArgillaError

        try:
            yield
        except ArgillaCredentialsError:
            raise ArgillaSyncError(f"Argilla at {self.target.url} rejected the API key from "
                                   f"{self.target.key_source} (401)") from None
        except ArgillaAPIError as exc:
            if getattr(exc, "status_code", None) == 401:
                raise ArgillaSyncError(f"Argilla at {self.target.url} rejected the API key from "
                                       f"{self.target.key_source} (401)") from None
            raise ArgillaSyncError(f"Argilla at {self.target.url} failed while {doing}: "
                                   f"{str(exc).splitlines()[0][:200]}") from None
        except (httpx.TransportError, ConnectionError) as exc:
            raise ArgillaSyncError(f"cannot reach Argilla at {self.target.url} while {doing} "
                                   f"({type(exc).__name__}); local goldens unchanged, re-run to complete") from None
        except ArgillaError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, (httpx.TransportError, ConnectionError)):
                raise ArgillaSyncError(f"cannot reach Argilla at {self.target.url} while {doing} "
                                       f"({type(cause).__name__}); local goldens unchanged, re-run to complete") from None
            raise ArgillaSyncError(f"Argilla at {self.target.url} failed while {doing}: "
                                   f"{str(exc).splitlines()[0][:200]}") from None

    def _workspace(self) -> Any:
        with self._errors("looking up the workspace"):
            ws = self.client.workspaces(self.target.workspace)
        if ws is None:
            raise ArgillaSyncError(f"workspace '{self.target.workspace}' not found on {self.target.url} (create it in "
                                   "Argilla or set [tool.goldgate.argilla] workspace)")
        return ws

    def _dataset(self, *, required: bool) -> rg.Dataset | None:
        import warnings

        ws = self._workspace()
        with self._errors("looking up the dataset"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = self.client.datasets(self.dataset_name, workspace=ws)
        if ds is None and required:
            raise ArgillaSyncError(f"dataset '{self.dataset_name}' not found in workspace '{ws.name}' on "
                                   f"{self.target.url} (push it first)")
        return ds

    def _ensure_dataset(self, schema: Schema) -> rg.Dataset:
        rg = sdk()

        ds = self._dataset(required=False)
        if ds is not None:
            check_remote_schema(schema, ds, str(self.golden_path))
            return ds
        splits = self.cfg.splits if self.cfg else list(DEFAULT_SPLITS)
        settings = settings_for(schema, splits, self.settings.min_submitted)
        with self._errors("creating the dataset"):
            return rg.Dataset(name=self.dataset_name, workspace=self._workspace(), settings=settings,
                              client=self.client).create()

    def _new_lock(self, dataset: rg.Dataset, schema: Schema) -> Lock:
        return Lock(self.target.url, self.target.workspace, dataset.name, str(dataset.id), schema.to_dict())

    def _lock_for(self, dataset: rg.Dataset | None) -> Lock | None:
        """The lock, if it describes this very dataset (a recreated dataset starts a fresh lock)."""
        lock = load_lock(self.lock_file)
        if lock is None or dataset is None or lock.dataset_id != str(dataset.id):
            return None
        return lock

    def _usernames(self) -> dict[str, str]:
        with self._errors("listing users"):
            return {str(u.id): u.username for u in self.client.users}

    def _log(self, dataset: rg.Dataset, records: list[Any], what: str) -> None:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        batch = 500  # the SDK's largest
        chunks = [records[i:i + batch] for i in range(0, len(records), batch)]
        with (self._errors(what), _progress(len(records), what) as advance,
              ThreadPoolExecutor(self.settings.push_concurrency) as pool):
            futures = {pool.submit(dataset.records.log, chunk, batch_size=batch): len(chunk) for chunk in chunks}
            try:
                for fut in as_completed(futures):
                    fut.result()  # the first failure, translated by _errors; a re-run resends the rest
                    advance(futures[fut])
            finally:
                for fut in futures:
                    fut.cancel()

    def _fetch(self, lock: Lock, *, schema: Schema, rule: Rule | None = None, min_submitted: int | None = None,
               since: str | None = None) -> dict[str, _Remote]:
        """Remote records updated since `since` (all when None), each with its decision."""
        rg = sdk()

        dataset = self._dataset(required=True)
        rule = rule or self.settings.rule
        min_submitted = min_submitted or self.settings.min_submitted
        query = rg.Query(filter=rg.Filter([("updated_at", ">=", since)])) if since else None
        out: dict[str, _Remote] = {}
        with self._errors("reading records"), _progress(None, "reading Argilla records") as advance:
            for rec in dataset.records(query=query, with_suggestions=True, with_responses=True, batch_size=1000):
                responses = _responses(rec)
                out[str(rec.id)] = _Remote(
                    id=str(rec.id), server_id=str(rec._server_id), fields=dict(rec.fields),
                    metadata=dict(rec.metadata or {}),
                    suggestions={s.question_name: (s.value, s.agent) for s in rec.suggestions},
                    decision=decide(responses, schema, rule, min_submitted),
                    updated_at=_iso(rec.updated_at),
                )
                advance(1)
        return out


def _responses(rec: Any) -> list[tuple[str, str, str | None, Any]]:
    """(user, status, question, value) per answer. Read from the record's API model because the SDK's
    `Record.responses` drops a discard that carries no values, and discards must leave the golden."""
    out: list[tuple[str, str, str | None, Any]] = []
    for um in rec._model.responses or []:
        status = str(getattr(um.status, "value", um.status))
        values = um.values or {}
        out.extend((str(um.user_id), status, q, (v or {}).get("value")) for q, v in values.items())
        if not values:
            out.append((str(um.user_id), status, None, None))
    return out


def _unlabelled(case: Case) -> bool:
    return not case.expected or case.provenance.get("source") == "unlabelled"


def _suggestion_hash(sugg: dict[str, tuple[Any, str | None, float | None]]) -> str:
    """What a push suggested for one record ("" for nothing): re-sent only when this changes."""
    return content_hash(sorted((k, json.dumps(v), a, sc) for k, (v, a, sc) in sugg.items())) if sugg else ""



def _iso(ts: Any) -> str:
    return ts.isoformat() if isinstance(ts, datetime) else str(ts)


def _run_outputs(run_dir: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Case id → {label, text, agent, score} from a run's cases.jsonl (first repeat, no errors)."""
    from goldgate.engine.results import load_cases

    out: dict[str, dict[str, Any]] = {}
    for rec in load_cases(run_dir):
        cid = rec.get("case_id")
        if cid not in wanted or cid in out or rec.get("error") or not rec.get("output"):
            continue
        score = rec.get("confidence", rec["output"].get("confidence"))
        out[cid] = {**rec["output"], "agent": rec.get("model") or rec.get("candidate") or "llm",
                    "score": float(score) if score is not None else None}
    return out


@contextmanager
def _progress(total: int | None, what: str) -> Iterator[Any]:
    """A rich progress bar on stderr; `advance(n)` moves it."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(what, total=total)
        yield lambda n: progress.advance(task, n)

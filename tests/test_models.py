"""Model slots through the public API: load_model().predict over real HTTP, label parsing, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import LABELS, eval_source, make_project, run_cli

from goldgate import load_model
from goldgate.calls.base import cache_key
from goldgate.models.base import parse_label
from goldgate.sim.process import SimProcess
from goldgate.sim.settings import SimSettings


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("card_arrival", "card_arrival"),
        ("  Card_Arrival. ", "card_arrival"),
        ("Intent: top_up_failed", "top_up_failed"),
        ("The intent is `exchange_charge`.", "exchange_charge"),
        ("I think it's transfer failed", "transfer_failed"),
        ("card_arrival or card_not_working", None),
        ("no idea", None),
    ],
)
def test_parse_label_is_constrained_to_the_label_set(text: str, want: str | None) -> None:
    assert parse_label(text, LABELS) == want


def test_load_model_predicts_through_the_slot_and_config_swaps_it(tmp_path: Path, sim_env) -> None:
    make_project(tmp_path)
    model = load_model("router", project=tmp_path)
    pred = model.predict({"text": "test question 3: something about my card or transfer"})
    assert pred.ok and pred.label in LABELS and pred.candidate == "sim-llm"
    assert pred.prompt_tokens > 0 and pred.cost_usd > 0 and not pred.cached
    again = model.predict({"text": "test question 3: something about my card or transfer"})
    assert again.cached and again.label == pred.label and sim_env.stats()["requests"] == 1
    py = tmp_path / "pyproject.toml"
    py.write_text(py.read_text().replace('use = "sim-llm"', 'use = "sim-weak"'))
    assert load_model("router", project=tmp_path).predict({"text": "x"}).candidate == "sim-weak"


def test_a_self_hosted_llm_is_priced_per_request_not_per_token(tmp_path: Path, sim_env) -> None:
    """`usd_per_request` (machine time) replaces the token price, cached answers included, and the
    decision's cost check names it as the price source."""
    from goldgate.config import load_config
    from goldgate.models.cost import cost_settings, llm_cost

    make_project(tmp_path)
    py = tmp_path / "pyproject.toml"
    py.write_text(py.read_text().replace('input_cost_per_token = 0.000001\noutput_cost_per_token = 0.000002\n',
                                         'usd_per_request = 0.0000162\n', 1))
    model = load_model("router", project=tmp_path)
    first = model.predict({"text": "test question 4: my transfer"})
    again = model.predict({"text": "test question 4: my transfer"})
    assert first.ok and first.prompt_tokens > 0 and not first.cached and again.cached
    assert first.cost_usd == again.cost_usd == 0.0000162
    cfg = load_config(tmp_path)
    cost = llm_cost([{"cost_usd": first.cost_usd}], "sim-llm", cfg.candidate("sim-llm"), cost_settings(cfg))
    assert cost.per_request == 0.0000162 and "usd_per_request" in cost.price_source


def test_a_candidate_concurrency_caps_its_calls_in_flight(tmp_path: Path, sim_key: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`concurrency` on a candidate (a one-slot local server) holds its calls below the project's
    limit; the same batch without it fills far more of the project's limit."""
    make_project(tmp_path)
    texts = [{"text": f"test question {i}: my card"} for i in range(24)]
    with SimProcess(SimSettings(keys=[sim_key], latency_ms=50, port=0)) as sim:
        monkeypatch.setenv("GOLDGATE_SIM_URL", sim.url)
        preds = load_model("router", project=tmp_path).predict_many(texts)
        assert all(p.ok for p in preds) and sim.stats()["max_inflight"] > 2
        sim.reset()
        py = tmp_path / "pyproject.toml"
        py.write_text(py.read_text().replace('output_cost_per_token = 0.000002\n',
                                             'output_cost_per_token = 0.000002\nconcurrency = 2\n', 1))
        preds = load_model("router", project=tmp_path).predict_many([{"text": f"other {t['text']}"} for t in texts])
        assert all(p.ok for p in preds) and sim.stats()["max_inflight"] == 2


def test_cache_key_ignores_secrets_and_transport_but_not_params() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    base = cache_key("app", "m", msgs, {"temperature": 0}, 0)
    assert cache_key("app", "m", msgs, {"temperature": 0, "api_key": "sk-secret", "timeout": 3}, 0) == base
    assert cache_key("app", "m", msgs, {"temperature": 1}, 0) != base
    assert cache_key("judge", "m", msgs, {"temperature": 0}, 0) != base
    assert cache_key("app", "m", msgs, {"temperature": 0}, 1) != base


def test_api_key_never_reaches_cache_results_or_errors(tmp_path: Path, sim_key: Path, monkeypatch) -> None:
    secret = "sk-test-THIS-IS-A-SECRET-0123456789"
    make_project(tmp_path)
    py = tmp_path / "pyproject.toml"
    py.write_text(py.read_text().replace('api_base = "${GOLDGATE_SIM_URL}"\nparams',
                                         'api_base = "${GOLDGATE_SIM_URL}"\napi_key_env = "SIM_KEY"\nparams'))
    (tmp_path / "evals" / "test_evals.py").write_text(eval_source(min_pass_rate=0.0))
    with SimProcess(SimSettings(keys=[sim_key], api_key=secret, port=0)) as sim:
        env = {"GOLDGATE_SIM_URL": sim.url, "SIM_KEY": secret}
        ok = run_cli("run", "--out", str(tmp_path / "ok"), "--", "-q", cwd=tmp_path, env=env)
        assert ok.returncode == 0, ok.stdout[-1500:]
        (tmp_path / ".goldgate" / "cache.sqlite").unlink()  # keys are not part of cache keys: force real calls
        bad = run_cli("run", "--out", str(tmp_path / "bad"), "--", "-q", "-p", "no:cacheprovider", cwd=tmp_path,
                      env={**env, "SIM_KEY": secret[::-1]})
        # A bad key stops the run's calls after the first 401s (at most one concurrency window).
        assert 1 <= sim.stats()["by_status"].get("401", 0) <= 16
    assert bad.returncode == 1
    blobs = [ok.stdout, ok.stderr, bad.stdout, bad.stderr]
    blobs += [p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(secret in b or secret[::-1] in b for b in blobs)
    assert "AuthenticationError" in (tmp_path / "bad" / "cases.jsonl").read_text()


def test_free_text_slot_returns_the_text(tmp_path: Path) -> None:
    make_project(tmp_path)
    recs = [{"id": f"s-{i}", "inputs": {"text": f"summarise ticket {i}"}, "expected": {"summary": f"customer {i} lost a card"},
             "metadata": {"split": "test"}, "provenance": {"source": "human"}} for i in range(3)]
    from support import write_jsonl

    key = write_jsonl(tmp_path / "evals" / "goldens" / "summaries.jsonl", recs)
    py = tmp_path / "pyproject.toml"
    (tmp_path / "prompts" / "summary.md").write_text("## user\nSummarise: {{ text }}\n")
    py.write_text(py.read_text() + '\n[tool.goldgate.slots.summariser]\nuse = "sim-summary"\ntask = "text"\n'
                  '\n[tool.goldgate.candidates.sim-summary]\nmodel = "openai/sim-summary"\nprompt = "prompts/summary.md"\n'
                  'api_base = "${GOLDGATE_SIM_URL}"\ninput_cost_per_token = 0\noutput_cost_per_token = 0\n')
    with SimProcess(SimSettings(keys=[key], accuracy=1.0, format_noise=0, port=0)) as sim:
        import os

        os.environ["GOLDGATE_SIM_URL"] = sim.url
        try:
            preds = load_model("summariser", project=tmp_path).predict_many([r["inputs"] for r in recs])
        finally:
            del os.environ["GOLDGATE_SIM_URL"]
    assert [p.text for p in preds] == [r["expected"]["summary"] for r in recs]
    assert all(p.label is None and p.ok for p in preds)

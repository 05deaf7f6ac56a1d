"""The composition root: training, the test evaluation and the bench build policies alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import corpora
from agents.build import load_model, make_policy, uses_chat_template
from agents.cli.bench import run_bench
from agents.cli.schema import BenchConfig, compose_config
from agents.lm import LMPolicy
from agents.training.config import ModelConfig, TrainConfig
from agents.training.runner import Run

TEMPLATE = ("{% for m in messages %}<user> {{ m['content'] }} </user>{% endfor %}"
            "{% if add_generation_prompt %} <agent>{% endif %}")


@pytest.fixture()
def templated_model(tmp_path: Path) -> Path:
    """A tiny checkpoint whose tokenizer has a chat template."""
    model, tokenizer = load_model("tiny", ModelConfig(), corpora.load("synthetic", size="tiny"))
    tokenizer.chat_template = TEMPLATE
    folder = tmp_path / "templated"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_unset_use_chat_template_follows_the_tokenizer(templated_model: Path) -> None:
    model, tokenizer = load_model(str(templated_model), ModelConfig())
    assert uses_chat_template(ModelConfig(), tokenizer)
    assert not uses_chat_template(ModelConfig(use_chat_template=False), tokenizer)
    plain = load_model("tiny", ModelConfig(), corpora.load("synthetic", size="tiny"))[1]
    assert not uses_chat_template(ModelConfig(), plain)


def test_training_test_and_bench_render_prompts_alike(
    templated_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: list[tuple[str, str, list[int]]] = []
    encode = LMPolicy._encode_prompt

    def spy(self: LMPolicy, prompt: str) -> list[int]:
        ids = encode(self, prompt)
        rendered.append((self.name, prompt, ids))
        return ids

    monkeypatch.setattr(LMPolicy, "_encode_prompt", spy)
    cfg = compose_config("train", TrainConfig, [
        "experiment=smoke", f"model.name={templated_model}", "schedule=sft_then_rl",
        "schedule.rl_steps=1", "sft.steps=2", "sft.batch_size=4", "rl.num_generations=2",
        "eval.max_questions=2", "test.max_questions=2", "test.samples=1", "progress=false",
        "report_to=[]"])
    assert cfg.model.use_chat_template is None
    run = Run(cfg, tmp_path / "run")
    summary = run.execute()
    run.test()
    bench = BenchConfig(corpus=cfg.corpus, agents=[f"lm:{summary['model']}"], max_questions=2,
                        samples=1, embed_queries=False, model=cfg.model)
    run_bench(bench, tmp_path)

    names = {name for name, _, _ in rendered}
    assert {"sft", "policy", "dev", "final", f"lm:{summary['model']}"} <= names
    _, tokenizer = load_model(str(templated_model), ModelConfig())
    for name, prompt, ids in rendered:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             tokenize=False, add_generation_prompt=True)
        assert ids == tokenizer(str(text), add_special_tokens=False)["input_ids"], name
    # Control: the same prompt without the template is other tokens, so the check can fail.
    lm, _ = load_model(str(templated_model), ModelConfig())
    plain = make_policy(lm, tokenizer, ModelConfig(use_chat_template=False))
    name, prompt, ids = rendered[0]
    assert plain._encode_prompt(prompt) != ids


def test_make_policy_takes_lengths_from_the_model_config(templated_model: Path) -> None:
    model_cfg = ModelConfig(max_new_tokens=7, max_length=99)
    lm, tokenizer = load_model(str(templated_model), model_cfg)
    policy: Any = make_policy(lm, tokenizer, model_cfg, temperature=0.5, top_p=0.9, seed=3,
                              name="x")
    assert (policy.max_new_tokens, policy.max_length, policy.temperature, policy.top_p,
            policy.name) == (7, 99, 0.5, 0.9, "x")

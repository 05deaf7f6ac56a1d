import dataclasses
import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import corpora
from agents.build import build_retriever, load_corpus, load_model
from agents.cli.schema import (
    CONF_DIR,
    BenchConfig,
    IndexConfig,
    check_overrides,
    compose_config,
    unknown_key,
    user_conf_dir,
)
from agents.training.config import TrainConfig

CONF = Path(CONF_DIR)
GROUPS = {
    g: sorted(p.stem for p in (CONF / g).glob("*.yaml"))
    for g in ("corpus", "retriever", "model", "algorithm", "schedule", "experiment")
}
#: Options that leave a required value for the user to fill in.
REQUIRED = {"hf_local": ["model.name=some-org/some-causal-lm"]}  # a hub id: not checked on disk


def train_config(*overrides: str) -> TrainConfig:
    return compose_config("train", TrainConfig, overrides)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and key != "tiny":
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def option_delta(group: str, option: str) -> dict[str, Any]:
    """The settings a group option file holds, as dotted keys of TrainConfig."""
    path = CONF / group / f"{option}.yaml"
    header = path.read_text().splitlines()[0]
    package = header.split("@package", 1)[1].strip() if "@package" in header else group
    body = yaml.safe_load(path.read_text()) or {}
    body.pop("defaults", None)
    return flatten(body, "" if package == "_global_" else f"{package}.")


def train_cli(override: str, run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["forksearch-train", override, f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=120)


def chosen_options() -> list[tuple[str, str]]:
    defaults = yaml.safe_load((CONF / "train.yaml").read_text())["defaults"]
    return [next(iter(d.items())) for d in defaults if isinstance(d, dict)]


def test_the_default_job_is_train_config_plus_exactly_the_listed_deltas():
    base = flatten(dataclasses.asdict(TrainConfig()))
    composed = flatten(dataclasses.asdict(train_config()))
    listed: dict[str, Any] = {}
    for group, option in chosen_options():
        listed.update(option_delta(group, option))
    changed = {k: v for k, v in composed.items() if base.get(k) != v}
    assert set(composed) == set(base)
    assert changed == {k: v for k, v in listed.items() if base.get(k) != v}
    assert changed["entropy.policy_loss"] == "kl_cov" and changed["sft.steps"] == 320
    assert "schedule.kind" in changed and "rl.learning_rate" not in changed


@pytest.mark.parametrize("group", ["model", "algorithm", "schedule", "experiment"])
def test_group_files_hold_only_what_they_change(group):
    base = flatten(dataclasses.asdict(TrainConfig()))
    for option in GROUPS[group]:
        restated = {k: v for k, v in option_delta(group, option).items() if base.get(k) == v}
        assert not restated, f"conf/{group}/{option}.yaml restates defaults: {restated}"


@pytest.mark.parametrize(("group", "option"), [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_group_option_composes_and_validates(group, option):
    cfg = train_config(f"{group}={option}", *REQUIRED.get(option, []))
    assert cfg.corpus["name"] and cfg.test.samples >= 1


def test_algorithms_select_their_registered_loss_and_levers():
    def entropy(option):
        return train_config(f"algorithm={option}").entropy

    grpo = entropy("grpo")
    assert grpo.policy_loss == "clip" and grpo.epsilon_high == grpo.epsilon_low
    assert entropy("clip_cov").policy_loss == "clip_cov"
    assert entropy("kl_cov").policy_loss == "kl_cov"
    assert entropy("forking").top_entropy_quantile == 0.2
    assert entropy("planning_boost").planning_boost == 0.2
    assert entropy("clip_higher").epsilon_high > entropy("clip_higher").epsilon_low
    assert entropy("adaptive_entropy").adaptive_entropy
    full = entropy("full")
    assert full.policy_loss == "kl_cov" and full.top_entropy_quantile == 0.2


def test_local_model_template_loads_a_saved_checkpoint_with_or_without_lora(tmp_path):
    from agents.training.lora import attach_adapters

    tiny = TrainConfig().model
    model, tokenizer = load_model("tiny", tiny, corpora.load("synthetic", size="tiny"))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    for lora in (True, False):
        cfg = train_config("model=hf_local", f"model.name={tmp_path}", f"model.lora={lora}")
        model, _ = load_model(cfg.model.name, cfg.model)
        assert cfg.model.lora is lora and cfg.model.gradient_checkpointing
        if lora:
            model = attach_adapters(model, cfg.model)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert all("lora_" in n for n in trainable) is lora and trainable


@pytest.mark.parametrize("option", GROUPS["corpus"])
def test_corpus_options_load(option, require_sample):
    if option in ("hotpotqa", "musique", "nq_open"):
        require_sample(option)
    corpus = load_corpus(train_config(f"corpus={option}").corpus)
    assert isinstance(corpus, corpora.Corpus) and corpus.documents and corpus.questions


@pytest.mark.parametrize("experiment", GROUPS["experiment"])
def test_experiments_work_with_any_corpus(experiment, require_sample):
    require_sample("hotpotqa")
    cfg = train_config(f"experiment={experiment}", "corpus=hotpotqa")
    assert cfg.corpus == {"name": "hotpotqa"}  # no synthetic-only option such as size
    assert load_corpus(cfg.corpus).name == "hotpotqa"


def test_outputs_name_a_corpus_after_its_config_file():
    assert train_config("corpus=template").corpus == {
        "name": "jsonl", "path": "conf/corpus/example_corpus.jsonl", "label": "template"}
    assert load_corpus(train_config("corpus=template").corpus).name == "template"
    # A file named after its loader keeps the loader's name, which says more.
    assert "label" not in train_config("experiment=smoke").corpus
    assert load_corpus(train_config("experiment=smoke").corpus).name == "synthetic-tiny-0"
    assert train_config("corpus=template", "++corpus.label=mine").corpus["label"] == "mine"


def test_a_conf_folder_in_the_working_directory_joins_the_search_path(tmp_path):
    assert user_conf_dir(tmp_path) == []
    (tmp_path / "conf" / "corpus").mkdir(parents=True)
    assert user_conf_dir(tmp_path) == [f"hydra.searchpath=['file://{tmp_path / 'conf'}']"]
    assert user_conf_dir(CONF.parent) == []  # forksearch's own conf is there already


def test_corpora_are_loaded_once_per_process():
    spec = {"name": "synthetic", "size": "tiny"}
    assert load_corpus(spec) is load_corpus(dict(spec))
    assert load_corpus({**spec, "seed": 3}) is not load_corpus(spec)


@pytest.mark.parametrize("option", GROUPS["retriever"])
def test_retriever_options_build(option, retrieval_server):
    corpus = corpora.load("synthetic", size="tiny")
    overrides = []
    if option == "remote":  # a stub server in place of the configured one, searching by BM25
        local = corpora.make_retriever("bm25", corpus, cache=False)

        def serve(handler, request):
            return 200, {"result": [
                [{"document": {"id": h.doc_id, "contents": corpus.by_id[h.doc_id].text},
                  "score": h.score} for h in hits]
                for hits in local.search(request["queries"], request["topk"])]}

        overrides = [f"retriever.url={retrieval_server(serve)}"]
    retriever = build_retriever(train_config(f"retriever={option}", *overrides).retriever, corpus)
    [hits] = retriever.search([corpus.documents[0].title], 3)
    assert hits and hits[0].doc_id in corpus.by_id


def test_a_users_own_loader_is_named_by_its_entry_point():
    cfg = train_config("corpus.name=corpora.synthetic:load_synthetic", "++corpus.size=tiny",
                       "++corpus.seed=5")
    assert load_corpus(cfg.corpus).documents == corpora.load("synthetic", size="tiny",
                                                             seed=5).documents


def test_bench_config_composes_with_the_training_groups():
    bench = compose_config("bench", BenchConfig, ["corpus=hotpotqa", "env.top_k=5"])
    assert bench.corpus == {"name": "hotpotqa"} and bench.env.top_k == 5
    assert bench.model == TrainConfig().model  # lm: agents render prompts as training does


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("env.retriever", "dense", "the retriever is chosen with its config group; say "
                                   "retriever=dense"),
        ("env.corpus_options.size", "tiny", "say corpus.size=tiny"),
        ("sft.stepz", "3", "unknown key 'sft.stepz'; did you mean sft.steps=3?"),
        ("entropy.kl_covv", "true", "did you mean entropy.kl_cov_beta=true?"),
        ("rl.zzz", "1", "unknown key 'rl.zzz'; expected one of rl.beta, "),
        ("seed.value", "1", "'seed' is a value, not a section"),
    ],
)
def test_unknown_keys_say_how_to_spell_them(key, value, expected):
    assert expected in unknown_key(key, value, TrainConfig)


@pytest.mark.parametrize("key", ["sft.steps", "corpus.size", "retriever.k1",
                                 "model.tiny.num_layers", "entropy.policy_loss", "test.samples"])
def test_known_and_free_form_keys_pass(key):
    assert unknown_key(key, "1", TrainConfig) is None


def test_override_check_passes_hydra_its_own_and_lets_loader_options_need_no_plus(capsys):
    args = ["-m", "algorithm=grpo,kl_cov", "hydra.run.dir=x", "~corpus.size", "--cfg", "job",
            "hydra/launcher=joblib", "sft.steps=3", "+seed=2"]
    assert check_overrides(args, TrainConfig, "prog") == args
    free = ["corpus.size=tiny", "+corpus.path=a.jsonl", "model.tiny.num_layers=3"]
    assert check_overrides(free, TrainConfig, "prog") == [
        "++corpus.size=tiny", "++corpus.path=a.jsonl", "++model.tiny.num_layers=3"]
    cfg = train_config(*check_overrides(["corpus.size=tiny"], TrainConfig, "prog"))
    assert cfg.corpus == {"name": "synthetic", "size": "tiny"}
    with pytest.raises(SystemExit) as stop:
        check_overrides(["+sft.stepz=3"], TrainConfig, "prog")
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "prog: error: unknown key 'sft.stepz'; did you mean sft.steps=3?\n")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("env.retriever=dense", "say retriever=dense"),
        ("+sft.stepz=3", "did you mean sft.steps=3?"),
        ("entropy.policy_loss=clip_kl", "entropy.policy_loss must be one of"),
    ],
)
def test_bad_keys_stop_the_cli_with_one_line(override, expected, tmp_path):
    run = train_cli(override, tmp_path)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and lines[0].startswith("forksearch-train:")
    assert not (tmp_path / "config.json").exists()  # the run never started


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("algorithm=nope", "Available options in 'algorithm'"),
        ("rl.learning_rate=abc", "could not be converted to Float"),
    ],
)
def test_bad_values_fail_with_the_allowed_choices_or_type(override, expected, tmp_path):
    run = train_cli(override, tmp_path)
    assert run.returncode != 0 and expected in run.stderr + run.stdout


@pytest.mark.parametrize(
    ("launcher", "plugin"),
    [
        ("basic", None),
        ("joblib", "hydra_plugins.hydra_joblib_launcher"),
        ("joblib_local", "hydra_plugins.hydra_joblib_launcher"),
        ("slurm", "hydra_plugins.hydra_submitit_launcher"),
        ("ray_cluster", "hydra_plugins.hydra_ray_launcher"),
    ],
)
def test_launcher_configs_compose(launcher, plugin):
    if plugin and importlib.util.find_spec(plugin) is None:
        extra = "slurm" if launcher == "slurm" else "ray"
        pytest.skip(f"{plugin} is not installed (pip install 'forksearch[{extra}]')")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.startswith("hydra")


def test_index_cli_builds_and_measures_the_configured_retrievers(tmp_path):
    run = subprocess.run(["forksearch-index", "corpus.size=tiny", "retrievers=[bm25,rank_bm25]",
                          f"cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path}"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "index.json").read_text())
    assert report["corpus"] == "synthetic-tiny-0"
    bm25, reference = report["rows"]
    assert (bm25["retriever"], bm25["status"], reference["status"]) == ("bm25", "built", "memory")
    assert 0 < bm25["recall@1"] <= bm25["recall@3"] <= bm25["recall@10"] <= 1
    assert compose_config("index", IndexConfig, ["ks=[5]"]).ks == [5]


def test_a_data_error_inside_the_job_is_one_line_and_a_traceback_only_on_request(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"doc_id": "d1", "title": "A", "text": "x"}\n{"doc_id": \n')
    args = ["forksearch-train", "corpus=template", f"corpus.path={bad}"]
    run = subprocess.run([*args, f"hydra.run.dir={tmp_path / 'a'}"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"forksearch-train: error: {bad}:2: invalid JSON (Expecting value at column 12); fix or "
        "remove that line"]
    full = subprocess.run([*args, f"hydra.run.dir={tmp_path / 'b'}"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    assert full.returncode == 1 and "Traceback" in full.stderr and f"{bad}:2" in full.stderr


@pytest.mark.parametrize("arm", sorted(p.stem for p in (CONF / "arm").glob("*.yaml")))
def test_every_diversity_study_arm_composes_onto_the_shared_sft(arm):
    cfg = train_config("experiment=diversity_study", f"+arm={arm}")
    expected = {"sft_only": "sft_only", "recipe": "diversity_triggered"}.get(arm, "sft_then_rl")
    assert cfg.schedule.kind == expected and cfg.sft_cache_dir and cfg.test.samples == 16
    baseline = train_config("experiment=diversity_study", "+arm=grpo")
    # Arms differ after SFT only, so every arm of a seed takes the same SFT phase.
    from agents.training.runner import SHARED_SFT_INPUTS

    assert all(getattr(cfg, k) == getattr(baseline, k) for k in SHARED_SFT_INPUTS)


@pytest.mark.parametrize("experiment", GROUPS["experiment"])
def test_searched_experiments_name_trial_folders_within_the_filesystem_limit(experiment):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    if "optuna" not in cfg.hydra.sweeper._target_:
        return  # a grid's folder names are its short values (+arm=grpo,seed=1)
    # Sampled floats in `param=0.309762700785465,...` soon pass 255 characters: errno 36.
    subdir = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"]
    assert "override_dirname" not in subdir and len(subdir) < 64

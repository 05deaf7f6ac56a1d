import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import corpora
from agents.cli.build import CONF_DIR, build_corpus
from agents.cli.train import train_config

GROUPS = {
    g: sorted(p.stem for p in (Path(CONF_DIR) / g).glob("*.yaml"))
    for g in ("corpus", "retriever", "model", "algorithm", "schedule", "experiment")
}


def compose_train(*overrides, return_hydra_config=False):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=return_hydra_config)


#: Options that leave a required value for the user to fill in.
REQUIRED = {"hf_local": ["model.name=some-org/some-causal-lm"]}  # a hub id: not checked on disk


@pytest.mark.parametrize(("group", "option"), [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_group_option_composes_and_validates(group, option):
    train_cfg, test = train_config(compose_train(f"{group}={option}", *REQUIRED.get(option, [])))
    assert train_cfg.env.corpus and test.samples >= 1


def test_local_model_template_loads_a_saved_checkpoint_with_or_without_lora(tmp_path):
    from agents.lm import load_model_and_tokenizer
    from agents.training.lora import attach_adapters

    tiny, tokenizer = load_model_and_tokenizer("tiny", corpora.load("synthetic", size="tiny"))
    tiny.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    for lora in (True, False):
        cfg, _ = train_config(compose_train("model=hf_local", f"model.name={tmp_path}",
                                            f"model.lora={lora}"))
        model, _ = load_model_and_tokenizer(cfg.model.name)
        assert cfg.model.lora is lora and cfg.model.gradient_checkpointing
        if lora:
            model = attach_adapters(model, cfg.model)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert all("lora_" in n for n in trainable) is lora and trainable


def test_local_model_template_requires_a_path():
    with pytest.raises(FileNotFoundError, match="/path/to/checkpoint.*save_pretrained"):
        train_config(compose_train("model=hf_local"))


@pytest.mark.parametrize("option", GROUPS["corpus"])
def test_corpus_options_instantiate(option):
    corpus = build_corpus(compose_train(f"corpus={option}").corpus)
    assert isinstance(corpus, corpora.Corpus) and corpus.documents and corpus.questions


@pytest.mark.parametrize("option", GROUPS["retriever"])
def test_retriever_options_instantiate(option):
    corpus = corpora.load("synthetic", size="tiny")
    retriever = instantiate(compose_train(f"retriever={option}").retriever)(corpus=corpus)
    [hits] = retriever.search([corpus.documents[0].title], 3)
    assert hits and hits[0].doc_id in corpus.by_id


def test_tiny_model_option_instantiates():
    from agents.lm import load_model_and_tokenizer

    cfg, _ = train_config(compose_train("model=tiny", "corpus.size=tiny"))
    model, tokenizer = load_model_and_tokenizer(
        cfg.model.name, corpora.load("synthetic", size="tiny")
    )
    assert model.config.vocab_size == len(tokenizer)


def test_algorithms_set_their_levers():
    def entropy(option):
        return train_config(compose_train(f"algorithm={option}"))[0].entropy

    grpo = entropy("grpo")
    assert not (grpo.clip_cov or grpo.kl_cov) and grpo.epsilon_high == grpo.epsilon_low
    assert entropy("clip_cov").clip_cov and not entropy("clip_cov").kl_cov
    assert entropy("kl_cov").kl_cov and entropy("forking").top_entropy_quantile == 0.2
    assert entropy("planning_boost").planning_boost == 0.2
    assert entropy("clip_higher").epsilon_high > entropy("clip_higher").epsilon_low
    assert entropy("adaptive_entropy").adaptive_entropy
    full = entropy("full")
    assert full.clip_cov and full.kl_cov and full.top_entropy_quantile == 0.2


def test_default_main_job_is_diversity_triggered_entropy_regulated_rl():
    cfg, test = train_config(compose_train())
    assert cfg.schedule.kind == "diversity_triggered" and cfg.schedule.replay
    assert cfg.entropy.kl_cov and cfg.rl.off_policy
    assert (cfg.env.corpus, cfg.model.name, test.split) == ("synthetic", "tiny", "test")


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
    cfg = compose_train(f"hydra/launcher={launcher}", return_hydra_config=True)
    assert cfg.hydra.launcher._target_.startswith("hydra")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("algorithm=nope", "Available options in 'algorithm'"),
        ("rl.learning_rate=abc", "could not be converted to Float"),
        ("sft.stepz=3", "Key 'stepz' not in 'SFTPhaseConfig'"),
        ("schedule.kind=weekly", "schedule.kind must be one of"),
    ],
)
def test_bad_overrides_fail_with_the_allowed_choices_or_type(override, expected, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "agents.cli.train", override, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert expected in run.stderr + run.stdout


def test_a_corpus_with_its_own_target_is_registered_for_the_trainer():
    cfg = compose_train(
        "corpus._target_=corpora.synthetic.load_synthetic",
        "corpus.size=tiny",
        "~corpus.name",
        "corpus.seed=5",
    )
    train_cfg, _ = train_config(cfg)
    assert train_cfg.env.corpus == "load_synthetic" and train_cfg.env.corpus_options == {}
    assert (
        corpora.load("load_synthetic").documents
        == corpora.load("synthetic", size="tiny", seed=5).documents
    )

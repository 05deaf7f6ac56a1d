"""The Hydra side of the CLIs: structured schemas, composition, and override checks.

``TrainConfig`` is the schema of ``conf/train.yaml`` (as ``train_schema``), :class:`BenchConfig`
that of ``conf/bench.yaml``, :class:`IndexConfig` that of ``conf/index.yaml`` and
:class:`ServeConfig` that of ``conf/serve.yaml``, so a key or value that does not fit is refused
before anything runs. Keys are checked on the command line first (:func:`check_overrides`), so
that a misspelt or misplaced key, with or without ``+``, stops the program with one line that
says how to spell it, instead of Hydra's multi-line report (or, for ``+key``, no error at all).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from agents.cli.logs import quiet_library_loggers
from agents.scripted.demonstrators import DEMONSTRATORS
from agents.training.config import EnvConfig, ModelConfig, TrainConfig
from corpora.retrieval.limits import ServeLimits
from corpora.retrieval.remote import RemoteRetrievalError

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
T = TypeVar("T")


@dataclass
class BenchConfig:
    """A ``forksearch-bench`` job: agents on a corpus split, scored on accuracy and diversity.

    Attributes:
        corpus: The corpus (as ``TrainConfig.corpus``).
        retriever: The retriever (as ``TrainConfig.retriever``).
        env: The environment (``top_k``, ``max_turns``, ``batch_size``...).
        split: The split whose questions are asked.
        agents: Agent names (``agents.registry``): ``demo_<strategy>``, ``base_<name>`` or
            ``lm:<checkpoint dir>``.
        samples: Episodes per question (pass@k uses k = samples).
        max_questions: Questions asked, a subset drawn with ``seed`` (``None``: the whole
            split).
        embed_queries: Vendi score and pairwise distance of query embeddings (MiniLM).
        seed: Seed of the agents' sampling.
        model: Prompt rendering and lengths of ``lm:`` agents (as in training; ``name`` unused).
        temperature: Sampling temperature of ``lm:`` agents.
        top_p: Nucleus sampling of ``lm:`` agents.
    """

    corpus: dict[str, Any] = field(default_factory=lambda: {"name": "synthetic"})
    retriever: dict[str, Any] = field(default_factory=lambda: {"name": "bm25"})
    env: EnvConfig = field(default_factory=EnvConfig)
    split: str = "test"
    agents: list[str] = field(default_factory=lambda: [f"demo_{s}" for s in DEMONSTRATORS] + [
        "base_verbatim", "base_keyword", "base_entity_bridge", "base_random"])
    samples: int = 4
    max_questions: int | None = None
    embed_queries: bool = True
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    temperature: float = 1.0
    top_p: float = 1.0


@dataclass
class IndexConfig:
    """A ``forksearch-index`` job: build (or refresh) a corpus's indexes, measure recall@k.

    Attributes:
        corpus: The corpus (as ``TrainConfig.corpus``).
        retrievers: Retriever names to build and measure.
        split: The split whose questions' supporting documents measure recall.
        ks: Cut-offs of recall@k.
        refresh: Delete this corpus's cached indexes first and rebuild them.
        cache_dir: Index cache root (``None``: ``$FORKSEARCH_CACHE_DIR`` or
            ``~/.cache/forksearch``).
    """

    corpus: dict[str, Any] = field(default_factory=lambda: {"name": "synthetic"})
    retrievers: list[str] = field(default_factory=lambda: ["bm25", "rank_bm25", "dense",
                                                           "hybrid"])
    split: str = "test"
    ks: list[int] = field(default_factory=lambda: [1, 3, 10])
    refresh: bool = False
    cache_dir: str | None = None


@dataclass
class AnalyzeConfig:
    """A ``forksearch-analyze`` job: where the learning signal of a run (or a sweep) went.

    Attributes:
        run_dir: A run directory of ``forksearch-train``, or a sweep directory holding several.
        trajectories: Test episodes in the fixed batch (token entropies, gradient shares).
        top_fraction: Share of agent tokens, by entropy, that count as forking tokens.
        shown: Episodes rendered token by token in ``analysis.html``.
        top_strings: Most frequent forking-token strings listed.
        progress: Show a progress bar.
    """

    run_dir: str = "???"
    trajectories: int = 64
    top_fraction: float = 0.2
    shown: int = 6
    top_strings: int = 30
    progress: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.top_fraction < 1.0:
            raise ValueError(f"top_fraction: expected a share in (0, 1), got {self.top_fraction}")
        for name in ("trajectories", "shown", "top_strings"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected at least 1, got {getattr(self, name)}")


#: Log levels of ``forksearch-serve`` (uvicorn's names).
SERVE_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass
class ServeConfig:
    """A ``forksearch-serve`` job: serve a corpus's retriever over HTTP (Search-R1's API).

    Attributes:
        corpus: The corpus (as ``TrainConfig.corpus``).
        retriever: The retriever (as ``TrainConfig.retriever``): ``bm25``, ``dense``,
            ``hybrid``...; its options too (``retriever.cache_dir=...``).
        host: Address to listen on. The service has no authentication: keep it on loopback
            unless a proxy in front of it guards it.
        port: Port to listen on.
        workers: uvicorn worker processes, each holding the corpus and loading the index.
        limits: Bounds on each request (``limits.max_queries=...``), see ``ServeLimits``.
        log_level: uvicorn's and the service's level; ``debug`` logs one line per request.
        access_log: uvicorn's access log (one line per request at ``info``).
    """

    corpus: dict[str, Any] = field(default_factory=lambda: {"name": "synthetic"})
    retriever: dict[str, Any] = field(default_factory=lambda: {"name": "bm25"})
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    limits: ServeLimits = field(default_factory=ServeLimits)
    log_level: str = "info"
    access_log: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port: expected 1 to 65535, got {self.port}")
        if self.workers < 1:
            raise ValueError(f"workers: expected at least 1, got {self.workers}")
        if self.log_level not in SERVE_LOG_LEVELS:
            raise ValueError(f"log_level: expected one of {', '.join(SERVE_LOG_LEVELS)}, "
                             f"got {self.log_level!r}")


ConfigStore.instance().store(name="train_schema", node=TrainConfig)
ConfigStore.instance().store(name="bench_schema", node=BenchConfig)
ConfigStore.instance().store(name="index_schema", node=IndexConfig)
ConfigStore.instance().store(name="analyze_schema", node=AnalyzeConfig)
ConfigStore.instance().store(name="serve_schema", node=ServeConfig)


@functools.cache
def _groups() -> frozenset[str]:
    return frozenset(p.name for p in Path(CONF_DIR).iterdir() if p.is_dir())


def _group_spelling(parts: list[str], value: str) -> str | None:
    """How to say a key that names a config group (``env.retriever`` -> ``retriever=...``)."""
    for depth, part in enumerate(parts):
        group = next((g for g in _groups() if part == g or part.startswith(f"{g}_")), None)
        if group is not None:
            rest = ".".join(parts[depth + 1:])
            said = f"{group}.{rest}={value}" if rest else f"{group}={value}"
            return f"the {group} is chosen with its config group; say {said}"
    return None


def _keys(schema: type, prefix: str = "") -> list[str]:
    """Every dotted key of a dataclass schema (sections included)."""
    keys = []
    for name, kind in typing.get_type_hints(schema).items():
        keys.append(prefix + name)
        if dataclasses.is_dataclass(kind):
            keys += _keys(kind, f"{prefix}{name}.")  # type: ignore[arg-type]
    return keys


def unknown_key(key: str, value: str, schema: type) -> str | None:
    """Why ``key=value`` names no setting of ``schema`` and how to say it; None if it does."""
    parts, node = key.split("."), schema
    for depth, part in enumerate(parts):
        if not dataclasses.is_dataclass(node):
            return None  # a free-form mapping (corpus options, model.tiny...): its loader checks
        hints = typing.get_type_hints(node)
        if part not in hints:
            said = _group_spelling(parts, value)
            if said is not None:
                return f"'{key}' is not a setting: {said}"
            # The same name in another section (top_k -> env.top_k) beats a near spelling.
            moved = [k for k in _keys(schema) if k.split(".")[-1] == parts[-1]]
            siblings = [".".join([*parts[:depth], name]) for name in hints]
            close = moved or difflib.get_close_matches(key, siblings, n=1, cutoff=0.6)
            if close:
                said = " or ".join(f"{k}={value}" for k in close[:3])
                return f"unknown key '{key}'; did you mean {said}?"
            return f"unknown key '{key}'; expected one of {', '.join(sorted(siblings))}"
        node = hints[part]
        if depth < len(parts) - 1 and not (dataclasses.is_dataclass(node)
                                           or typing.get_origin(node) is dict):
            return f"'{'.'.join(parts[:depth + 1])}' is a value, not a section; set it directly"
    return None


def _free_form(key: str, schema: type) -> bool:
    """Whether a (known) key sits in a free-form mapping, such as a corpus loader's options."""
    node: Any = schema
    for part in key.split("."):
        if not dataclasses.is_dataclass(node):
            return True
        node = typing.get_type_hints(node)[part]
    return False


def check_overrides(args: Sequence[str], schema: type, program: str) -> list[str]:
    """Check the keys of command-line overrides against ``schema``.

    Returns:
        ``args``, with ``++`` (Hydra's set-or-add) on keys of free-form mappings, so that a
        loader option (``corpus.size=tiny``) needs no ``+`` whether or not a file set it.

    Raises:
        SystemExit: With one line, if a ``key=value`` names no setting of ``schema``.
    """
    out = []
    for arg in args:
        key, _, value = arg.partition("=")
        key = key.lstrip("+")
        if (arg.startswith(("-", "~")) or not value or key in _groups()
                or key.split(".")[0] == "hydra" or "@" in key or "/" in key):
            out.append(arg)  # Hydra's flags, deletions, groups and settings are Hydra's to check
            continue
        problem = unknown_key(key, value, schema)
        if problem is not None:
            fail(program, problem)
        out.append(f"++{key}={value}" if _free_form(key, schema) else arg)
    return out


#: Errors that say what the user set wrong (config, paths, data files, a retrieval server that
#: is not there): reported in one line.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError,
               RemoteRetrievalError)
F = TypeVar("F", bound=Callable[..., Any])


def fail(program: str, message: str) -> NoReturn:
    """Print ``program: error: message`` (its first line) to stderr and exit with status 2."""
    print(f"{program}: error: {message.strip().splitlines()[0]}", file=sys.stderr)
    raise SystemExit(2)


def reports_user_errors(program: str) -> Callable[[F], F]:
    """Decorate a CLI job so a user error ends it with one line (a traceback only for bugs).

    ``HYDRA_FULL_ERROR=1`` keeps the traceback of user errors too.
    """
    def decorate(job: F) -> F:
        @functools.wraps(job)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return job(*args, **kwargs)
            except USER_ERRORS as err:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                fail(program, str(err) or type(err).__name__)
        return cast(F, run)
    return decorate


def entry_point(config_name: str, schema: type[T], program: str,
                job: Callable[[T, Path], Any]) -> Callable[[], None]:
    """The console-script function of a CLI over ``conf/<config_name>.yaml``.

    It checks the command line's keys (:func:`check_overrides`), composes the config with
    Hydra (sweeps, launchers and run directories included), validates it into ``schema`` and
    calls ``job(config, run_dir)``, whose return value goes to the sweeper (Optuna's reads
    it as the objectives); a user error ends it with one line (:func:`reports_user_errors`).
    """
    @hydra.main(config_path=CONF_DIR, config_name=config_name, version_base="1.3")
    @reports_user_errors(program)
    def run(cfg: DictConfig) -> Any:
        quiet_library_loggers()  # after Hydra configured logging, before any library logs
        config = OmegaConf.to_object(cfg)
        assert isinstance(config, schema)
        runtime = HydraConfig.get().runtime
        label_corpus(config, runtime.choices)
        return job(config, Path(runtime.output_dir))

    def main() -> None:
        # Console scripts, unlike `python -m`, do not see the working directory: a user's
        # loader module beside their data (name: my_loader:load) must import. Appended, so
        # it never shadows an installed module.
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        args = check_overrides(sys.argv[1:], schema, program)
        if not any(arg.lstrip("+").startswith("hydra.searchpath") for arg in args):
            args += user_conf_dir()
        sys.argv[1:] = args
        run()

    main.__doc__ = f"Entry point of ``{program}``."
    return main


def user_conf_dir(cwd: Path | None = None) -> list[str]:
    """The override that puts ``./conf`` on the config search path, or ``[]`` if there is none.

    A user keeps their own ``conf/corpus/<name>.yaml`` there. It is searched after forksearch's
    own configs, which win on a name clash: a user's folder can add options to a group but
    never change one that ships.
    """
    folder = (cwd or Path.cwd()) / "conf"
    if not folder.is_dir() or folder.resolve() == Path(CONF_DIR).resolve():
        return []
    return [f"hydra.searchpath=['file://{folder.resolve()}']"]


def compose_config(name: str, schema: type[T], overrides: Sequence[str] = ()) -> T:
    """Compose ``conf/<name>.yaml`` with ``overrides`` (as on the command line) into ``schema``.

    Tests and benchmarks use this to get exactly the config a CLI run would get.
    """
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(name, overrides=list(overrides), return_hydra_config=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    out = OmegaConf.to_object(cfg)
    if not isinstance(out, schema):
        raise TypeError(f"conf/{name}.yaml built {type(out).__name__}, expected {schema.__name__}")
    label_corpus(out, choices)  # type: ignore[arg-type]
    return out


def label_corpus(config: Any, choices: Mapping[str, Any]) -> None:
    """Name the corpus after its config file (``corpus=lovelace``), not its loader (``jsonl``).

    Sets ``config.corpus["label"]`` (see ``corpora.load``) unless the file or the command line
    set one, or the file is named after its loader (``hotpotqa``, ``synthetic_tiny``), whose
    own name is then kept (``synthetic-tiny-0`` says the world's size and seed).
    """
    spec, choice = getattr(config, "corpus", None), choices.get("corpus")
    if (isinstance(spec, dict) and isinstance(choice, str)
            and not choice.startswith(str(spec.get("name")))):
        spec.setdefault("label", choice)

"""Run a whole training schedule: SFT and RL phases, measured, checkpointed and resumable.

Every phase starts from the model folder the run state names (so a resumed run and an
uninterrupted one start each phase alike), trains in place with its own optimizer, and ends by
saving the model and committing the state. See :mod:`agents.training.checkpoint` for what is on
disk and :mod:`agents.training.metrics` for ``metrics.jsonl``.

Under ``accelerate launch`` every process runs the same schedule in step; the main process alone
writes the run directory, and each commit ends at a barrier, after which the others may read
what it names (:mod:`agents.training.distributed`). The replay buffer lives on the main process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

from agents.build import build_retriever, load_corpus, load_model, make_envs, make_policy
from agents.evaluation import summarize
from agents.lm import LMPolicy
from agents.profiling import section
from agents.rollout import rollout
from agents.training import distributed
from agents.training.checkpoint import (
    CONFIG_NAME,
    PhaseRecord,
    RunState,
    atomic_write_text,
    discard_uncommitted,
    load_state,
    prune,
    save_state,
)
from agents.training.config import TrainConfig
from agents.training.demonstrations import DemoPool, EntityRenamer, ReplayBuffer, build_pool
from agents.training.grpo import grpo_config, run_grpo
from agents.training.lora import attach_adapters, merge_adapters
from agents.training.metrics import METRICS_NAME, MetricsLog, episode_stats
from agents.training.monitor import PhaseInfo, PhaseMonitor, throughput
from agents.training.preflight import check_run
from agents.training.schedule import EntropyTrigger, Schedule
from agents.training.sft import run_sft
from agents.training.trainer_args import common_args, quiet_libraries, resolve_device
from agents.trajectory import Trajectory, load_jsonl, save_jsonl, spread_sample
from corpora.atomic import publish
from envs.batch import SearchEnvBatch

log = logging.getLogger(__name__)

#: The config parts a first SFT phase depends on: runs that agree on them share it.
SHARED_SFT_INPUTS = ("corpus", "retriever", "env", "model", "demos", "sft", "eval", "seed")
SHARED_SFT_RECORD = "phase.json"


class Run:
    """One training run in one directory (see :func:`train`)."""

    def __init__(self, cfg: TrainConfig, run_dir: Path,
                 callbacks: Sequence[TrainerCallback] = ()) -> None:
        self._clock = time.perf_counter()
        self.cfg, self.callbacks = cfg, list(callbacks)
        self.device = resolve_device(cfg.model.device)
        distributed.start(cpu=self.device == "cpu")
        # The main process's folder: each process's Hydra may have read the clock apart.
        self.run_dir = Path(distributed.broadcast(str(run_dir)))
        self.metrics = MetricsLog(self.run_dir / METRICS_NAME)
        with distributed.main_first():  # the others then load what it cached
            self.corpus = load_corpus(cfg.corpus)
            check_run(cfg, self.corpus, self.run_dir)  # before anything is built or written
            self.retriever = build_retriever(cfg.retriever, self.corpus)
        self.train_questions = self.corpus.split("train")[: cfg.demos.max_questions]
        self.dev_qids = [q.qid for q in self.corpus.split(cfg.eval.split)][: cfg.eval.max_questions]
        self.train_batch = make_envs(self.corpus, self.retriever, cfg.env, "train")
        self.dev_batch = make_envs(self.corpus, self.retriever, cfg.env, cfg.eval.split,
                                   min(cfg.env.batch_size, len(self.dev_qids) * cfg.eval.samples))
        self.schedule = Schedule(cfg.schedule, cfg.sft.steps)
        self.replay = ReplayBuffer() if cfg.schedule.replay and distributed.is_main() else None
        self._elapsed_before = 0.0
        self.state = self._open()
        self._elapsed_before = self.state.elapsed_s

    # -- run state -------------------------------------------------------------------------

    def wall_time_s(self) -> float:
        """Seconds the run has taken: committed by earlier processes, plus this one's so far."""
        return self._elapsed_before + time.perf_counter() - self._clock

    def _open(self) -> RunState:
        """Start or resume the run (main process); the others then follow its committed state."""
        state = self._open_main() if distributed.is_main() else None
        distributed.barrier()
        if state is None:
            state = load_state(self.run_dir)
            if state is None:
                raise RuntimeError(f"the main process committed no run state in {self.run_dir}")
            self.schedule.load_state_dict(state.schedule)
        return state

    def _open_main(self) -> RunState:
        state = load_state(self.run_dir)
        if state is not None and not self.cfg.resume:
            raise FileExistsError(f"{self.run_dir} already holds a run; pass resume=true to "
                                  "continue it, or choose a new run directory")
        if state is None:
            discard_uncommitted(self.run_dir)  # a run killed while it initialised
            return self._initialise()
        saved = json.loads((self.run_dir / CONFIG_NAME).read_text())
        if {**saved, "resume": True} != {**asdict(self.cfg), "resume": True}:
            log.warning("resuming %s with a config that differs from its config.json",
                        self.run_dir)
        self.schedule.load_state_dict(state.schedule)
        if self.replay is not None and state.replay is not None:
            self.replay.label_counts = dict(state.replay["label_counts"])
            self.replay.candidates = load_jsonl(self.run_dir / state.replay["candidates"])
        prune(self.run_dir, state)  # what a killed process left half-written
        self.metrics.truncate(state.global_step)
        log.info("resuming %s at step %d", self.run_dir, state.global_step)
        return state

    def _initialise(self) -> RunState:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / CONFIG_NAME, json.dumps(asdict(self.cfg), indent=1))
        model, tokenizer = load_model(self.cfg.model.name, self.cfg.model, self.corpus,
                                      seed=self.cfg.seed)
        self._save_model(model, tokenizer, "models/init")
        pool = build_pool(self.train_batch, [q.qid for q in self.train_questions],
                          self.cfg.demos.strategies, self.cfg.demos.max_searches,
                          progress=self.cfg.progress)
        log.info("demonstration pool: %s", pool.counts())
        if not pool.demos:  # SFT would have nothing to train on
            raise ValueError(f"no demonstrator ({', '.join(self.cfg.demos.strategies)}) solved "
                             f"any of the {len(self.train_questions)} train questions within "
                             f"demos.max_searches={self.cfg.demos.max_searches} searches: "
                             "check the corpus and retriever, or raise demos.max_searches")
        publish(self.run_dir / "pool/pool-00.jsonl", pool.save)
        self.metrics.truncate(0)
        self.state = RunState(model="models/init", pool="pool/pool-00.jsonl",
                              schedule=self.schedule.state_dict())
        self._save_state()
        return self.state

    def _save_model(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    rel: str) -> str:
        def write(path: Path) -> None:
            model.save_pretrained(path)
            tokenizer.save_pretrained(path)

        if distributed.is_main():
            publish(self.run_dir / rel, write)
        return rel

    def _commit(self) -> None:
        """Commit the run state (main process), then wait until every process is there."""
        if distributed.is_main():
            self._save_state()
        distributed.barrier()

    def _save_state(self) -> None:
        self.state.schedule = self.schedule.state_dict()
        self.state.elapsed_s = self.wall_time_s()
        replay = self.replay
        if replay is not None:
            rel = f"replay/replay-{self.state.global_step:06d}.jsonl"
            if self.state.replay is None or self.state.replay["candidates"] != rel:
                publish(self.run_dir / rel, lambda path: save_jsonl(replay.candidates, path))
            self.state.replay = {"label_counts": replay.label_counts, "candidates": rel}
        save_state(self.run_dir, self.state)

    # -- phases ----------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        """Run (or finish) the schedule; return the run's summary."""
        with quiet_libraries():
            while not self.state.complete:
                if self.state.phase is None:
                    plan = self.schedule.next_phase()
                    if plan is None:
                        self.state.complete = True
                        self._commit()
                        break
                    self._start(plan.kind, plan.max_steps, plan.refresh)
                assert self.state.phase is not None
                self._run(self.state.phase)
        return self.summary()

    def _start(self, kind: str, max_steps: int, refresh: bool) -> None:
        index = len(self.state.finished)
        if refresh and self.replay is not None:
            pool = DemoPool.load(self.run_dir / self.state.pool)
            chosen = self.replay.select(pool, self.cfg.schedule.replay_rare_ratio,
                                        self.cfg.schedule.replay_max, seed=self.cfg.seed + index)
            if pool.add(chosen):
                self.state.pool = f"pool/pool-{index:02d}.jsonl"
                publish(self.run_dir / self.state.pool, pool.save)
            log.info("replay: %d RL episodes joined the pool", len(chosen))
            self.replay.clear()
        if refresh:  # the replay buffer, and so the refreshed pool, is the main process's
            self.state.pool = distributed.broadcast(self.state.pool)
        self.state.phase = PhaseRecord(index=index, kind=kind, max_steps=max_steps,
                                       start_step=self.state.global_step, refresh=refresh)
        trigger = None
        if kind == "rl" and self.schedule.triggered:
            sched = self.cfg.schedule
            trigger = EntropyTrigger(sched.entropy_threshold, sched.entropy_drop, sched.period,
                                     sched.pass_drop, sched.patience)
        self.state.trigger = trigger.state_dict() if trigger else None
        self._commit()

    def _run(self, phase: PhaseRecord) -> None:
        shared = self._shared_sft(phase)
        if shared is not None and (shared / SHARED_SFT_RECORD).is_file():
            self._reuse_sft(phase, shared)
            return
        lora = self.cfg.model.lora
        # Adapter checkpoints hold no base weights: they go back on the phase's starting model.
        source = self.state.model if lora else phase.checkpoint or self.state.model
        model, tokenizer = load_model(str(self.run_dir / source), self.cfg.model)
        if lora:
            checkpoint = self.run_dir / phase.checkpoint if phase.checkpoint else None
            model = attach_adapters(model, self.cfg.model, checkpoint)
        if not phase.done:
            resume = self.run_dir / phase.checkpoint if phase.checkpoint else None
            with section(phase.kind):
                self._train_phase(phase, model, tokenizer, self._monitor(phase, tokenizer), resume)
            if not phase.done:
                raise RuntimeError(f"phase {phase.name} ended without a final checkpoint")
        self._finish(phase, model, tokenizer)
        if shared is not None:
            self._share_sft(phase, shared)

    # -- a first SFT phase shared between runs (TrainConfig.sft_cache_dir) -----------------

    def _shared_sft(self, phase: PhaseRecord) -> Path | None:
        """Where a fresh first SFT phase of this config is shared, or None if it is not."""
        cfg = self.cfg
        if (cfg.sft_cache_dir is None or distributed.size() > 1 or phase.index != 0
                or phase.kind != "sft" or phase.done or phase.checkpoint is not None):
            return None
        # Everything the first SFT phase and its figures depend on (not the RL settings).
        inputs = {k: v for k, v in asdict(cfg).items() if k in SHARED_SFT_INPUTS}
        key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
        return Path(cfg.sft_cache_dir) / f"sft-{key}"

    def _share_sft(self, phase: PhaseRecord, folder: Path) -> None:
        """Publish the finished first SFT phase: its model, record and metrics rows."""
        rows = [r for r in self.metrics.rows() if r["phase_index"] == phase.index]

        def write(path: Path) -> None:
            shutil.copytree(self.run_dir / self.state.model, path / "model")
            (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            (path / SHARED_SFT_RECORD).write_text(json.dumps(asdict(phase), indent=1))

        try:
            publish(folder, write)
        except OSError:  # another run of the sweep got there first (before or during): keep it
            if not (folder / SHARED_SFT_RECORD).is_file():
                raise

    def _reuse_sft(self, phase: PhaseRecord, folder: Path) -> None:
        """Take the first SFT phase from ``folder`` instead of training it again."""
        record = json.loads((folder / SHARED_SFT_RECORD).read_text())
        rel = f"models/{phase.name}"
        publish(self.run_dir / rel, lambda path: shutil.copytree(folder / "model", path))
        for row in (folder / "metrics.jsonl").read_text().splitlines():
            self.metrics.append(json.loads(row))
        phase.steps, phase.done, phase.timing = record["steps"], True, record["timing"]
        phase.summary = {**record["summary"], "shared_from": str(folder)}
        log.info("phase %s: taken from %s (same corpus, model, demonstrations, SFT and seed)",
                 phase.name, folder)
        self._close(phase, rel)

    def _policy(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                temperature: float, seed: int, name: str) -> LMPolicy:
        return make_policy(model, tokenizer, self.cfg.model, temperature=temperature,
                           top_p=self.cfg.rl.top_p, seed=seed, name=name)

    def _monitor(self, phase: PhaseRecord, tokenizer: PreTrainedTokenizerBase) -> PhaseMonitor:
        def evaluate(model: PreTrainedModel) -> dict[str, float]:
            was_training = model.training  # LMPolicy puts the model in eval mode
            policy = self._policy(model, tokenizer, self.cfg.eval.temperature,
                                  self.cfg.seed + distributed.rank(), "dev")
            try:
                with section("eval"):
                    episodes = self._play_shared(policy, self.dev_batch, self.dev_qids,
                                                 self.cfg.eval.samples)
            finally:
                model.train(was_training)
            return episode_stats(episodes, k=self.cfg.eval.samples, prefix="dev_")

        def commit(steps: int, folder: Path, done: bool, timing: dict[str, float]) -> None:
            phase.checkpoint = str(folder.relative_to(self.run_dir))
            phase.steps, phase.done, phase.timing = steps, done, timing
            self.state.trigger = trigger.state_dict() if trigger else None
            self._commit()

        trigger = EntropyTrigger.from_state(self.state.trigger) if self.state.trigger else None
        return PhaseMonitor(
            phase=PhaseInfo(phase.kind, phase.index, phase.start_step, phase.max_steps),
            metrics=self.metrics, evaluate=evaluate, commit=commit,
            eval_every=self.cfg.eval.every, trigger=trigger,
            replay=self.replay if phase.kind == "rl" else None, progress=self.cfg.progress,
            timing=dict(phase.timing))

    def _play_shared(self, policy: LMPolicy, batch: SearchEnvBatch, qids: Sequence[str],
                     samples: int, progress: bool = False) -> list[Trajectory]:
        """Episodes of ``qids``, each process playing its share; all of them, in ``qids`` order.

        Every process gets every episode (so all compute the same figures).
        """
        mine = rollout(policy, batch, distributed.share(qids), samples=samples,
                       progress=progress and distributed.is_main())
        if distributed.size() == 1:
            return mine
        position = {qid: i for i, qid in enumerate(qids)}
        return sorted(distributed.gather(mine), key=lambda t: (position[t.qid], t.sample))

    def _train_phase(self, phase: PhaseRecord, model: PreTrainedModel,
                     tokenizer: PreTrainedTokenizerBase, monitor: PhaseMonitor,
                     resume: Path | None) -> None:
        cfg, seed = self.cfg, self.cfg.seed + 1000 * phase.index
        common = common_args(self.run_dir / "phases" / phase.name, phase.max_steps,
                             cfg.save_steps, cfg.report_to, self.device, seed,
                             cfg.model.gradient_checkpointing)
        log.info("phase %s: %d steps from global step %d", phase.name, phase.max_steps,
                 phase.start_step)
        if phase.kind == "sft":
            policy = self._policy(model, tokenizer, 1.0, seed, "sft")
            pool = DemoPool.load(self.run_dir / self.state.pool)
            # sft.batch_size is per process: the Trainer deals each process its own batches.
            demos = pool.balanced_sample(phase.max_steps * cfg.sft.batch_size * distributed.size(),
                                         seed=seed)
            if cfg.demos.rename_entities > 0:
                demos = EntityRenamer(self.corpus).augment(demos, cfg.demos.rename_entities, seed)
            sft = cfg.sft
            if phase.refresh and cfg.schedule.refresh_learning_rate is not None:
                sft = replace(sft, learning_rate=cfg.schedule.refresh_learning_rate)
            run_sft(model, tokenizer, policy, demos, sft, common, monitor, resume,
                    callbacks=self.callbacks)
        else:
            # Each process plays its own prompts, with its own sampling generator.
            policy = self._policy(model, tokenizer, cfg.rl.temperature,
                                  seed + distributed.rank(), "policy")
            args = grpo_config(common, cfg.rl, cfg.entropy, policy.max_length)
            run_grpo(model, tokenizer, policy, self.train_batch, self.train_questions, args,
                     cfg.entropy, monitor, resume, callbacks=self.callbacks)

    def _finish(self, phase: PhaseRecord, model: PreTrainedModel,
                tokenizer: PreTrainedTokenizerBase) -> None:
        rel = self._save_model(merge_adapters(model), tokenizer, f"models/{phase.name}")
        rows = [r for r in self.metrics.rows() if r["phase_index"] == phase.index]
        evaluated = [r for r in rows if r.get("dev_em") is not None]
        phase.summary = {
            **throughput(phase.steps, phase.timing),
            "stopped_early": phase.steps < phase.max_steps,
            "pool": DemoPool.load(self.run_dir / self.state.pool).counts(),
            # The trigger's windows and what fired it, so a reader sees why RL stopped.
            **({"trigger": {k: self.state.trigger[k] for k in ("reference", "history", "fired")}}
               if self.state.trigger else {}),
            **({k: v for k, v in evaluated[-1].items() if k.startswith("dev_")}
               if evaluated else {}),
        }
        self._close(phase, rel)
        log.info("phase %s done: %s", phase.name, {k: phase.summary.get(k) for k in
                                                   ("steps_per_s", "dev_em")})

    def _close(self, phase: PhaseRecord, rel: str) -> None:
        """Record a finished phase whose model is at ``rel`` and commit the run state."""
        self.schedule.finish(phase.kind, phase.steps)
        self.state.finished.append(phase)
        if self.cfg.keep_phase_models:
            self.state.kept_models.append(self.state.model)
        self.state.phase, self.state.model, self.state.trigger = None, rel, None
        self._commit()

    def test(self) -> dict[str, Any]:
        """Episodes of the final model on ``cfg.test``'s split: accuracy, pass@k, diversity.

        200 episodes, of questions spread over the split, go to
        ``test_trajectories_sample.jsonl``. With several processes each plays its share of the
        questions; every process returns the figures of all the episodes.
        """
        test = self.cfg.test
        model, tokenizer = load_model(str(self.run_dir / self.state.model), self.cfg.model)
        policy = self._policy(model, tokenizer, test.temperature,
                              self.cfg.seed + distributed.rank(), "final")
        qids = [q.qid for q in self.corpus.split(test.split)][: test.max_questions]
        batch = make_envs(self.corpus, self.retriever, self.cfg.env, test.split)
        episodes = self._play_shared(policy, batch, qids, test.samples, self.cfg.progress)
        if distributed.is_main():
            save_jsonl(spread_sample(episodes, 200),
                       self.run_dir / "test_trajectories_sample.jsonl")
        return summarize(episodes, k=test.samples, seed=self.cfg.seed)

    def summary(self) -> dict[str, Any]:
        """Per-phase figures and the final model's location."""
        return {"run_dir": str(self.run_dir), "steps": self.state.global_step,
                "model": str(self.run_dir / self.state.model),
                "phases": [{"index": p.index, "kind": p.kind, "start_step": p.start_step,
                            "steps": p.steps, **p.summary} for p in self.state.finished]}


def train(cfg: TrainConfig, run_dir: Path,
          callbacks: Sequence[TrainerCallback] = ()) -> dict[str, Any]:
    """Run the training schedule of ``cfg`` in ``run_dir``.

    With ``cfg.resume`` a run directory that holds a run continues from its last committed
    checkpoint (``metrics.jsonl`` is cut back to that step first, so no step appears twice);
    without it, the directory must not hold a run yet.

    Args:
        cfg: The run's configuration.
        run_dir: Where state, models, checkpoints, ``metrics.jsonl`` and TensorBoard logs go.
        callbacks: Extra ``transformers`` callbacks attached to every phase's trainer.

    Returns:
        ``run_dir``, total ``steps``, the final ``model`` folder, and per phase its kind, steps,
        training ``seconds`` and throughput (``steps_per_s``, ``tokens_per_s``), summed over
        the processes that ran it, and its final held-out figures (``dev_em``,
        ``dev_strategy_entropy``...).
    """
    return Run(cfg, run_dir, callbacks).execute()

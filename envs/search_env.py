"""The Gymnasium search environment."""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Any

import gymnasium as gym
from gymnasium import spaces

import corpora
from corpora import Corpus, Hit, Question, Retriever
from envs.protocol import (
    INVALID_FEEDBACK,
    TRUNCATED_FEEDBACK,
    Action,
    parse_action,
    render_information,
    render_prompt,
)
from envs.rewards import REWARDS, exact_match, token_f1

MAX_OBSERVATION_CHARS = 16_384
MAX_ACTION_CHARS = 4_096


@lru_cache(maxsize=8)
def _cached_corpus(name: str, options: tuple[tuple[str, Any], ...]) -> Corpus:
    return corpora.load(name, **dict(options))


@lru_cache(maxsize=8)
def _cached_retriever(corpus: Corpus, kind: str, options: tuple[tuple[str, Any], ...]) -> Retriever:
    return corpora.make_retriever(kind, corpus, **dict(options))


def _charset(corpus: Corpus) -> str:
    # Gymnasium's Text space is alphanumeric by default; observations quote corpus text, so the
    # charset is printable ASCII plus every character the corpus uses.
    chars = set(string.printable)
    for doc in corpus.documents:
        chars.update(doc.title, doc.text)
    for q in corpus.questions:
        chars.update(q.question)
    return "".join(sorted(chars))


class SearchEnv(gym.Env[str, str]):
    """Multi-turn question answering with a search tool, in the Search-R1 text protocol.

    ## Description
    Each episode poses one question from a corpus split. The agent acts in text: it searches
    the corpus with ``<search>query</search>`` and finishes with ``<answer>text</answer>``;
    optional ``<think>...</think>`` is ignored. Searches return the top ``top_k`` documents.

    ## Action Space
    ``Text``: the agent's whole turn. Any string is accepted; turns without a complete
    ``<search>`` or ``<answer>`` tag (or with an empty one) are invalid actions, answered with
    feedback, and the episode goes on.

    ## Observation Space
    ``Text``: the text the environment adds to the conversation: the instruction and question on
    ``reset``, an ``<information>...</information>`` block after a search, a feedback line after
    an invalid action. Observations longer than 16,384 characters are truncated.

    ## Starting State
    ``reset(options={"qid": ...})`` selects a question; otherwise one is drawn uniformly from the
    split with ``self.np_random``.

    ## Rewards
    On an answer: exact match (``reward="em"``) or token F1 (``reward="f1"``) against the gold
    answers after SQuAD normalisation, minus ``format_penalty`` for every invalid action in the
    episode. 0 on every other step.

    ## Episode End
    Terminated when the agent answers; truncated when ``max_turns`` turns passed without one.

    ## Information
    Every step: ``qid``, ``question``, ``turn`` (turns taken), ``action_type`` (``search``,
    ``answer`` or ``invalid``), ``invalid_action`` (bool), ``queries`` (all queries so far),
    ``retrieved_ids`` (doc ids per search so far), ``invalid_actions`` (count so far). At the end
    of an episode also ``answer`` (``None`` if truncated), ``em``, ``f1`` and ``score`` (the
    episode's total reward), and ``gold_answers`` (for logging only: agents must not read it).

    ## Arguments
    ```python
    import gymnasium, envs
    env = gymnasium.make("forksearch/Search-v0", corpus="synthetic", split="test",
                         retriever="bm25", top_k=3, max_turns=4)
    ```
    ``corpus`` and ``retriever`` take a registered name or a ready object; the ``*_options``
    dicts go to ``corpora.load`` and ``corpora.make_retriever``. Environments built from the same
    names share one corpus and one retriever.

    ## Version History
    * v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        corpus: str | Corpus = "synthetic",
        split: str = "test",
        retriever: str | Retriever = "bm25",
        top_k: int = 3,
        max_turns: int = 4,
        reward: str = "em",
        format_penalty: float = 0.0,
        corpus_options: dict[str, Any] | None = None,
        retriever_options: dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if top_k < 1 or max_turns < 1:
            raise ValueError(f"expected top_k >= 1 and max_turns >= 1, got {top_k=}, {max_turns=}")
        if reward not in REWARDS:
            raise ValueError(f"unknown reward {reward!r}; expected one of {', '.join(REWARDS)}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"expected render_mode None or 'ansi', got {render_mode!r}")
        if isinstance(corpus, str):
            corpus = _cached_corpus(corpus, tuple(sorted((corpus_options or {}).items())))
        if isinstance(retriever, str):
            options = tuple(sorted((retriever_options or {}).items()))
            retriever = _cached_retriever(corpus, retriever, options)
        self.corpus: Corpus = corpus
        self.retriever: Retriever = retriever
        self.questions: list[Question] = corpus.split(split)
        if not self.questions:
            raise ValueError(f"corpus {corpus.name!r} has no questions in split {split!r}")
        self._by_qid = {q.qid: q for q in self.questions}
        self.split, self.top_k, self.max_turns = split, top_k, max_turns
        self.reward_name, self.format_penalty = reward, format_penalty
        self.render_mode = render_mode
        charset = _charset(corpus)
        self.action_space = spaces.Text(MAX_ACTION_CHARS, min_length=0, charset=charset)
        self.observation_space = spaces.Text(MAX_OBSERVATION_CHARS, min_length=0, charset=charset)
        self.question: Question = self.questions[0]
        self._transcript: list[str] = []
        self._reset_state()

    def _reset_state(self) -> None:
        self.turn = 0
        self.queries: list[str] = []
        self.retrieved_ids: list[list[str]] = []
        self.invalid_actions = 0
        self.done = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start an episode on ``options["qid"]`` or on a question drawn with ``np_random``."""
        super().reset(seed=seed)
        qid = (options or {}).get("qid")
        if qid is not None:
            if qid not in self._by_qid:
                raise KeyError(f"no question {qid!r} in split {self.split!r} of {self.corpus.name}")
            self.question = self._by_qid[qid]
        else:
            self.question = self.questions[int(self.np_random.integers(len(self.questions)))]
        self._reset_state()
        obs = render_prompt(self.question.question)
        self._transcript = [obs]
        return self._fit(obs), self._info(Action("reset"))

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Take one agent turn; searches call the retriever for this one query."""
        parsed = parse_action(action)
        hits = (
            self.retriever.search([parsed.content], self.top_k)[0]
            if parsed.kind == "search"
            else []
        )
        return self.apply(action, parsed, hits)

    def apply(
        self, action: str, parsed: Action, hits: list[Hit]
    ) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Advance the episode given a parsed action and, for a search, its hits.

        ``step`` calls this after retrieving; ``envs.batch.SearchEnvBatch`` calls it after one
        batched retrieval for many environments.
        """
        if self.done:
            # Stepping a finished episode is a caller bug, but still data: report it, change
            # nothing.
            parsed = Action("invalid", reason="the episode has ended; call reset()")
        self.turn += 1
        reward, terminated = 0.0, False
        if parsed.kind == "search":
            self.queries.append(parsed.content)
            self.retrieved_ids.append([h.doc_id for h in hits])
            obs = render_information([self.corpus.by_id[h.doc_id] for h in hits])
        elif parsed.kind == "answer":
            terminated = True
            reward = REWARDS[self.reward_name](parsed.content, self.question.answers)
            reward -= self.format_penalty * self.invalid_actions
            obs = ""
        else:
            self.invalid_actions += 1
            obs = INVALID_FEEDBACK.format(reason=parsed.reason)
        truncated = not terminated and self.turn >= self.max_turns and not self.done
        if truncated:
            reward -= self.format_penalty * self.invalid_actions
            obs += TRUNCATED_FEEDBACK
        info = self._info(parsed)
        if (terminated or truncated) and not self.done:
            answer = parsed.content if terminated else None
            info.update(
                answer=answer,
                em=exact_match(answer, self.question.answers) if answer is not None else 0.0,
                f1=token_f1(answer, self.question.answers) if answer is not None else 0.0,
                score=reward,
                gold_answers=list(self.question.answers),
            )
        self.done = self.done or terminated or truncated
        self._transcript += [action if isinstance(action, str) else repr(action), obs]
        return self._fit(obs), reward, terminated, truncated, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``, the episode so far as one string."""
        return "".join(self._transcript) if self.render_mode == "ansi" else None

    def _info(self, parsed: Action) -> dict[str, Any]:
        return {
            "qid": self.question.qid,
            "question": self.question.question,
            "turn": self.turn,
            "action_type": parsed.kind,
            "invalid_action": parsed.kind == "invalid",
            "invalid_actions": self.invalid_actions,
            "queries": list(self.queries),
            "retrieved_ids": [list(ids) for ids in self.retrieved_ids],
        }

    def _fit(self, obs: str) -> str:
        return obs[:MAX_OBSERVATION_CHARS]

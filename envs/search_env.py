"""The Gymnasium search environment."""

from __future__ import annotations

import copy
import math
import numbers
import string
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from gymnasium import logger, spaces

from corpora import Corpus, Document, Hit, Question, Retriever
from envs.cache import shared_corpus, shared_retriever
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
#: The text shown for a hit whose document neither the hit nor the corpus holds.
MISSING_DOCUMENT_TEXT = "[no text: the retriever returned this id, but not its document]"

StepResult = tuple[str, float, bool, bool, dict[str, Any]]


def _charset(corpus: Corpus) -> str:
    # Gymnasium's Text space is alphanumeric by default; observations quote corpus text, so the
    # charset is printable ASCII plus every character the corpus uses.
    chars = set(string.printable)
    for doc in corpus.documents:
        chars.update(doc.title, doc.text)
    for q in corpus.questions:
        chars.update(q.question)
    return "".join(sorted(chars))


class ObservationText(spaces.Text):
    """A ``Text`` space whose members may hold characters outside its charset.

    Observations quote documents, and a remote retriever's server sends documents whose
    characters no local corpus can list in advance; mangling them to fit a charset would hide
    text (and answers) from the agent. Membership checks the type and the length only;
    ``sample`` draws from the charset (the corpus's characters).
    """

    def contains(self, x: Any) -> bool:
        """Whether ``x`` is a string of an allowed length (any characters)."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    @property
    def is_np_flattenable(self) -> bool:
        """No: flattening maps characters to charset indices, and members may lack one."""
        return False

    def __eq__(self, other: object, /) -> bool:
        return isinstance(other, ObservationText) and super().__eq__(other)


def _int_at_least(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"expected {name} to be an int >= {minimum}, got {value!r} "
                        f"({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"expected {name} >= {minimum}, got {value}")
    return int(value)


def _penalty(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected format_penalty to be a number >= 0, got {value!r} "
                        f"({type(value).__name__})")
    penalty = float(value)
    if not (math.isfinite(penalty) and penalty >= 0):
        raise ValueError(f"expected a finite format_penalty >= 0, got {value}")
    return penalty


def _check_type(name: str, value: object, expected: tuple[type, ...], what: str) -> None:
    if not isinstance(value, expected):
        raise TypeError(f"expected {name} to be {what}, got {value!r} ({type(value).__name__})")


class SearchEnv(gym.Env[str, str]):
    """Multi-turn question answering with a search tool, in the Search-R1 text protocol.

    ## Description
    Each episode poses one question from a corpus split. The agent acts in text: it searches
    the corpus with ``<search>query</search>`` and finishes with ``<answer>text</answer>``;
    optional ``<think>...</think>`` is ignored. Searches return the top ``top_k`` documents.

    ## Action Space
    ``Text`` of at most 4,096 characters (``MAX_ACTION_CHARS``): the agent's whole turn. Any
    value is accepted and never raises; turns without a complete ``<search>`` or ``<answer>``
    tag (or with an empty one), and values that are not strings, are invalid actions, answered
    with feedback, and the episode goes on. Only the first 4,096 characters of a longer turn
    are read (``info["action_truncated"]`` says so, and the feedback of an invalid action
    mentions it). Parsing takes time linear in the length of the turn.

    ## Observation Space
    ``Text`` (``ObservationText``): the text the environment adds to the conversation: the
    instruction and question on ``reset``, an ``<information>...</information>`` block after a
    search, a feedback line after an invalid action. Observations longer than 16,384 characters
    are truncated. A search shows each hit's own document when the retriever sent one (a remote
    retriever does), else the corpus's document of that id; an id that neither holds shows the
    id as title and ``MISSING_DOCUMENT_TEXT`` as text (with a ``gymnasium`` warning), so a
    corpus of questions only works with a remote retriever. Server documents may hold any
    character, so the space contains every string up to the length limit; its charset (printable
    ASCII plus the corpus's characters) is what ``sample`` draws from.

    ## Starting State
    ``reset(options={"qid": ...})`` selects a question; otherwise one is drawn uniformly from the
    split with ``self.np_random``.

    ## Rewards
    On an answer: exact match (``reward="em"``) or token F1 (``reward="f1"``) against the gold
    answers after SQuAD normalisation, minus ``format_penalty`` for every invalid action in the
    episode; on truncation, minus the same penalty. 0 on every other step. ``reward_range`` is
    ``(-format_penalty * max_turns, 1.0)``.

    ## Episode End
    Terminated when the agent answers; truncated when ``max_turns`` turns passed without one.
    Stepping an ended episode is a caller bug: it logs a ``gymnasium`` warning, ignores the
    action and repeats the final observation, ``terminated`` and ``truncated`` with reward 0;
    nothing is counted (turns, invalid actions, transcript) until ``reset``.

    ## Information
    Every step: ``qid``, ``question``, ``turn`` (turns taken), ``action_type`` (``search``,
    ``answer`` or ``invalid``; ``ignored`` after the end), ``invalid_action`` (bool),
    ``action_truncated`` (bool: the turn was longer than 4,096 characters), ``queries`` (all
    queries so far), ``retrieved_ids`` (doc ids per search so far), ``retrieved_documents`` (the
    ``corpora.Document`` shown for each of those ids, as rendered), ``invalid_actions`` (count so
    far). At the end of an episode also ``answer`` (``None`` if truncated), ``em``, ``f1`` and
    ``score`` (the episode's total reward), and ``gold_answers`` (for logging only: agents must
    not read it).

    ## Arguments
    ```python
    import gymnasium, envs
    env = gymnasium.make("forksearch/Search-v0", corpus="synthetic", split="test",
                         retriever="bm25", top_k=3, max_turns=4)
    ```
    ``corpus`` and ``retriever`` take a registered name or a ready object; the ``*_options``
    dicts go to ``corpora.load`` and ``corpora.make_retriever``. Environments built from the same
    names and options in one process share one corpus and one retriever (``envs.cache``); a
    file or folder named in ``corpus_options`` is read again once it changed. Arguments of the
    wrong type or range raise ``TypeError`` or ``ValueError`` at construction.

    ## Version History
    * v0: initial version. Later, without a new id (issue #13): a step after the end warns and
      repeats the end instead of counting on; turns are read up to ``MAX_ACTION_CHARS``;
      constructor arguments are type-checked; ``reward_range`` is declared. Issue #15: searches
      show the documents a remote retriever sends (none need be in the corpus), unknown ids
      show a placeholder instead of raising, ``info["retrieved_documents"]``, and the
      observation space contains any characters.
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
        corpus_options: Mapping[str, Any] | None = None,
        retriever_options: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.top_k = _int_at_least("top_k", top_k, 1)
        self.max_turns = _int_at_least("max_turns", max_turns, 1)
        self.format_penalty = _penalty(format_penalty)
        if not isinstance(reward, str) or reward not in REWARDS:
            raise ValueError(f"unknown reward {reward!r}; expected one of {', '.join(REWARDS)}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"expected render_mode None or 'ansi', got {render_mode!r}")
        _check_type("split", split, (str,), "a split name")
        _check_type("corpus", corpus, (str, Corpus), "a corpus name or a Corpus")
        _check_type("retriever", retriever, (str, Retriever), "a retriever name or a Retriever")
        for name, options in (("corpus_options", corpus_options),
                              ("retriever_options", retriever_options)):
            if options is not None:
                _check_type(name, options, (Mapping,), "a dict of options or None")
        if isinstance(corpus, str):
            corpus = shared_corpus(corpus, corpus_options or {})
        if isinstance(retriever, str):
            retriever = shared_retriever(retriever, corpus, retriever_options or {})
        self.corpus: Corpus = corpus
        self.retriever: Retriever = retriever
        self.questions: list[Question] = corpus.split(split)
        if not self.questions:
            raise ValueError(f"corpus {corpus.name!r} has no questions in split {split!r}")
        self._by_qid = {q.qid: q for q in self.questions}
        self.split, self.reward_name, self.render_mode = split, reward, render_mode
        self.reward_range: tuple[float, float] = (-self.format_penalty * self.max_turns, 1.0)
        charset = _charset(corpus)
        self.action_space = spaces.Text(MAX_ACTION_CHARS, min_length=0, charset=charset)
        self.observation_space = ObservationText(MAX_OBSERVATION_CHARS, min_length=0,
                                                 charset=charset)
        self.question: Question = self.questions[0]
        self._transcript: list[str] = []
        self._reset_state()

    def _reset_state(self) -> None:
        self.turn = 0
        self.queries: list[str] = []
        self.retrieved_ids: list[list[str]] = []
        self.retrieved_documents: list[list[Document]] = []
        self.invalid_actions = 0
        # The last step's (observation, terminated, truncated, info) once the episode ended.
        self._final: tuple[str, bool, bool, dict[str, Any]] | None = None

    @property
    def done(self) -> bool:
        """Whether the episode has ended (terminated or truncated)."""
        return self._final is not None

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

    def parse(self, action: object) -> Action:
        """Parse a turn as ``step`` does: only its first ``MAX_ACTION_CHARS`` characters count."""
        if not isinstance(action, str) or len(action) <= MAX_ACTION_CHARS:
            return parse_action(action)
        parsed = parse_action(action[:MAX_ACTION_CHARS])
        if parsed.kind != "invalid":
            return parsed
        return Action("invalid", reason=f"{parsed.reason} in the first {MAX_ACTION_CHARS:,} "
                      f"characters of a {len(action):,}-character turn")

    def step(self, action: str) -> StepResult:
        """Take one agent turn; searches call the retriever for this one query."""
        parsed = self.parse(action)
        hits = (
            self.retriever.search([parsed.content], self.top_k)[0]
            if parsed.kind == "search" and not self.done
            else []
        )
        return self.apply(action, parsed, hits)

    def apply(self, action: str, parsed: Action, hits: list[Hit]) -> StepResult:
        """Advance the episode given ``parse(action)`` and, for a search, its hits.

        ``step`` calls this after retrieving; ``envs.batch.SearchEnvBatch`` calls it after one
        batched retrieval for many environments.
        """
        if self._final is not None:
            return self._repeat_end(*self._final)
        self.turn += 1
        reward, terminated = 0.0, False
        if parsed.kind == "search":
            self.queries.append(parsed.content)
            docs = [self._document(h) for h in hits]
            self.retrieved_ids.append([h.doc_id for h in hits])
            self.retrieved_documents.append(docs)
            obs = render_information(docs)
        elif parsed.kind == "answer":
            terminated = True
            reward = REWARDS[self.reward_name](parsed.content, self.question.answers)
            reward -= self.format_penalty * self.invalid_actions
            obs = ""
        else:
            self.invalid_actions += 1
            obs = INVALID_FEEDBACK.format(reason=parsed.reason)
        truncated = not terminated and self.turn >= self.max_turns
        if truncated:
            reward -= self.format_penalty * self.invalid_actions
            obs += TRUNCATED_FEEDBACK
        obs = self._fit(obs)
        info = self._info(parsed, action_truncated=_too_long(action))
        if terminated or truncated:
            answer = parsed.content if terminated else None
            info.update(
                answer=answer,
                em=exact_match(answer, self.question.answers) if answer is not None else 0.0,
                f1=token_f1(answer, self.question.answers) if answer is not None else 0.0,
                score=reward,
                gold_answers=list(self.question.answers),
            )
            self._final = (obs, terminated, truncated, copy.deepcopy(info))
        turn = action[:MAX_ACTION_CHARS] if isinstance(action, str) else repr(action)
        self._transcript += [turn, obs]
        return obs, reward, terminated, truncated, info

    def _document(self, hit: Hit) -> Document:
        """The document to show for a hit: its own, the corpus's, or a placeholder."""
        if hit.document is not None:
            return hit.document
        doc = self.corpus.by_id.get(hit.doc_id)
        if doc is not None:
            return doc
        # Retriever output is data: a mismatch between retriever and corpus must not end the
        # episode, but it deserves a warning (shown once: the message never changes).
        logger.warn(
            "SearchEnv: the retriever returned a doc id that the corpus does not hold, without "
            "its document; the observation shows a placeholder. Is the retriever built over "
            "another corpus?"
        )
        return Document(hit.doc_id, hit.doc_id, MISSING_DOCUMENT_TEXT)

    def _repeat_end(
        self, obs: str, terminated: bool, truncated: bool, final_info: dict[str, Any]
    ) -> StepResult:
        logger.warn(
            "SearchEnv.step() was called after the episode ended; the action is ignored and the "
            "final result is repeated with reward 0. Call reset() to start a new episode."
        )
        info = copy.deepcopy(final_info)
        info.update(action_type="ignored", invalid_action=False, action_truncated=False)
        return obs, 0.0, terminated, truncated, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``, the episode so far as one string."""
        return "".join(self._transcript) if self.render_mode == "ansi" else None

    def _info(self, parsed: Action, action_truncated: bool = False) -> dict[str, Any]:
        return {
            "qid": self.question.qid,
            "question": self.question.question,
            "turn": self.turn,
            "action_type": parsed.kind,
            "invalid_action": parsed.kind == "invalid",
            "action_truncated": action_truncated,
            "invalid_actions": self.invalid_actions,
            "queries": list(self.queries),
            "retrieved_ids": [list(ids) for ids in self.retrieved_ids],
            "retrieved_documents": [list(docs) for docs in self.retrieved_documents],
        }

    def _fit(self, obs: str) -> str:
        return obs[:MAX_OBSERVATION_CHARS]


def _too_long(action: object) -> bool:
    return isinstance(action, str) and len(action) > MAX_ACTION_CHARS

"""A causal LM as a batched search-agent policy, recording token-level rollout data."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from agents.lm.sampling import Generated, generate_batch
from agents.lm.tokenizer import decode
from agents.profiling import section
from agents.trajectory import TokenRecord

_CLOSING = ("</search>", "</answer>")
_ACTION = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)
_TAIL = 16  # tokens decoded to spot a closing tag spelt in pieces


class LMPolicy:
    """Plays many episodes at once with a Hugging Face causal LM (``agents.rollout.BatchPolicy``).

    The first observation (instruction and question) is the prompt; with ``use_chat_template``
    and a tokenizer that has a chat template it is rendered as a user message plus generation
    prompt. Every later observation is appended as plain text, as Search-R1 does. Each turn is
    sampled for all slots in one batched loop and stops at ``</search>``, ``</answer>``, the eos
    token or ``max_new_tokens``.

    Per slot it records a ``TokenRecord``: ``logprobs`` and ``entropies`` of the
    temperature-scaled distribution, tag masks on generated tokens strictly inside
    ``<search>``/``<answer>`` tags. A sampled eos stays in the record (it was a choice) but not in
    the turn's text. Generation never runs past ``max_length`` tokens per slot; a slot already
    there ends its turn with empty text.

    Args:
        model: A causal LM; it is put in eval mode and used on its current device.
        tokenizer: Its tokenizer (needs an eos token).
        temperature: Sampling temperature; 0 is greedy decoding (logprobs then at temperature 1).
        top_p: Nucleus sampling mass in (0, 1].
        max_new_tokens: Most tokens generated per turn.
        max_length: Most tokens per episode (prompt and completion), capped by the model's
            ``max_position_embeddings``.
        name: Agent name written into trajectories.
        use_chat_template: Render the prompt with the tokenizer's chat template.
        seed: Seed of the policy's own random generator.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 48,
        max_length: int = 1024,
        name: str = "lm",
        use_chat_template: bool = False,
        seed: int = 0,
    ) -> None:
        if temperature < 0 or not 0 < top_p <= 1:
            raise ValueError(
                f"expected temperature >= 0 and 0 < top_p <= 1, got {temperature=}, {top_p=}"
            )
        if max_new_tokens < 1 or max_length < 2:
            raise ValueError(
                f"expected max_new_tokens >= 1 and max_length >= 2, "
                f"got {max_new_tokens=}, {max_length=}"
            )
        if tokenizer.eos_token_id is None:
            raise ValueError("expected a tokenizer with an eos token")
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.temperature, self.top_p, self.max_new_tokens = temperature, top_p, max_new_tokens
        positions = getattr(model.config, "max_position_embeddings", None) or max_length
        self.max_length = min(max_length, positions)
        self.use_chat_template = use_chat_template and bool(
            getattr(tokenizer, "chat_template", None)
        )
        if use_chat_template and not self.use_chat_template:
            warnings.warn("tokenizer has no chat template; prompts are plain text", stacklevel=2)
        eos = int(tokenizer.eos_token_id)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        self.stop_ids = {eos} | {i for t in _CLOSING if (i := self._single_id(t)) is not None}
        specials = (tokenizer.pad_token_id, tokenizer.bos_token_id)
        self.banned_ids = sorted({i for i in specials if i is not None and i != eos})
        tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self._maybe_closing = {i for i, t in enumerate(tokens) if t and ">" in t} - self.stop_ids
        self.seed = seed
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        #: Generates one turn for a batch of contexts; an RL phase with ``rl.use_vllm`` puts
        #: ``agents.lm.vllm_turns.VLLMTurns`` here.
        self.generate_turns: Callable[..., list[Generated]] = generate_batch
        self.records: dict[int, TokenRecord] = {}
        self._prompt_pending: set[int] = set()  # the first observation is the prompt itself

    @property
    def device(self) -> torch.device:
        """The model's device."""
        return next(self.model.parameters()).device

    def reseed(self, seed: int) -> None:
        """Restart the random generator from ``seed``."""
        self.seed = seed
        self.generator.manual_seed(seed)

    def begin(self, slot: int, question: str, qid: str, prompt: str) -> None:
        """Start the slot's episode; ``prompt`` (the first observation) becomes ``prompt_ids``."""
        self.records[slot] = TokenRecord(prompt_ids=self._encode_prompt(prompt))
        self._prompt_pending.add(slot)

    def act(self, slots: Sequence[int], observations: Sequence[str]) -> list[str]:
        """Append each slot's observation, then generate one turn for all slots together."""
        records = []
        with section("encode"):
            for slot, observation in zip(slots, observations, strict=True):
                if slot not in self.records:
                    raise KeyError(f"slot {slot} has no episode; call begin() first")
                record = self.records[slot]
                if slot in self._prompt_pending:
                    self._prompt_pending.discard(slot)
                elif observation:
                    record.add_observation(self._encode(observation))
                records.append(record)
        budgets = [min(self.max_new_tokens, self.max_length - len(r)) for r in records]
        with section("generate"):
            generated = self._generate(records, budgets)
        texts = []
        with section("decode"):
            for record, gen in zip(records, generated, strict=True):
                text = self._decode(gen.ids)
                record.add_turn(gen.ids, gen.logprobs, gen.entropies,
                                *self._tag_masks(gen.ids, text))
                texts.append(text)
        return texts

    def _generate(self, records: Sequence[TokenRecord], budgets: list[int]) -> list[Generated]:
        return self.generate_turns(
            self.model,
            [r.prompt_ids + r.completion_ids for r in records],
            budgets,
            pad_id=self.pad_id,
            stop_ids=self.stop_ids,
            temperature=self.temperature,
            top_p=self.top_p,
            generator=self.generator,
            banned_ids=self.banned_ids,
            stop_check=self._closes_in_pieces if self._maybe_closing else None,
        )

    def token_record(self, slot: int) -> TokenRecord:
        """Return the slot's record itself: ``act`` extends it, the next ``begin`` replaces it."""
        return self.records[slot]

    def _encode_prompt(self, prompt: str) -> list[int]:
        if self.use_chat_template:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            return self._encode(str(text))
        return list(self.tokenizer(prompt)["input_ids"])

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _decode(self, ids: Sequence[int]) -> str:
        return decode(self.tokenizer, ids, skip_special_tokens=True,
                      clean_up_tokenization_spaces=False)

    def _single_id(self, text: str) -> int | None:
        ids = self._encode(text)
        return ids[0] if len(ids) == 1 else None

    def _closes_in_pieces(self, row: int, ids: list[int]) -> bool:
        # A closing tag the model spelt in several tokens still ends the turn.
        if ids[-1] not in self._maybe_closing:
            return False
        tail = self._decode(ids[-_TAIL:])
        return any(tag in tail for tag in _CLOSING)

    def _tag_masks(self, ids: list[int], text: str) -> tuple[list[int], list[int]]:
        query, answer = [0] * len(ids), [0] * len(ids)
        if "<search>" not in text and "<answer>" not in text:
            return query, answer
        ends = [len(self._decode(ids[: i + 1])) for i in range(len(ids))]
        for match in _ACTION.finditer(text):
            lo, hi = match.span(2)
            mask = query if match.group(1) == "search" else answer
            for i, end in enumerate(ends):
                start = ends[i - 1] if i else 0
                if lo <= start and end <= hi and end > start:
                    mask[i] = 1
        return query, answer

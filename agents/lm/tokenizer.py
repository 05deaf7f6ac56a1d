"""A small subword tokenizer trained on a corpus, for the embedded tiny model.

Entity names must split into pieces that many names share, so that a tiny model can copy an
unseen name from retrieved text into a query or an answer (a probe measured test EM 0.25 with
whole-name tokens against 0.84 with syllable-sized pieces). Three choices make that happen:

* A space belongs to the word after it (``" Kathir"``), and every text segment starts with a
  space (a ``Prepend`` normalizer), so a word is the same tokens wherever it appears (after
  ``<search>`` or after a space alike) and the token before a word's first piece is the word
  before it. Copying a word start needs that: with spaces as tokens of their own, every word
  followed a space and the copy probe predicted 7% of first pieces against 57% of later ones.
  ``decode`` (not ``tokenizer.decode``) removes those spaces again. The tiny model's
  pointer head (``agents.lm.pointer``) copies tokens, so a name copied from a passage must be
  the same tokens there and in the query. (Attaching the space to the word before it instead
  made a name's last piece depend on what followed it; spaces as tokens of their own made
  episodes longer and SFT a third slower.)
* Digits and punctuation runs are tokens of their own.
* BPE counts a word that occurs fewer than ``COMMON_WORD_COUNT`` times only once, and a merge
  needs a count of at least 2: a piece inside a rare word (a name) is merged only when a second
  word shares it, while frequent words (the phrasing of the documents) still become whole tokens.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from tokenizers.trainers import BpeTrainer
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from corpora import Corpus
from corpora.atomic import publish
from corpora.paths import cache_dir as default_cache_dir
from envs import protocol

#: Protocol tags; each is one token that decodes as its text.
TAGS = (
    "<search>",
    "</search>",
    "<answer>",
    "</answer>",
    "<information>",
    "</information>",
    "<think>",
    "</think>",
)
PAD_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<s>", "</s>"
#: Words seen at least this often keep their counts in BPE training; rarer ones count once.
COMMON_WORD_COUNT = 32
#: Bumped whenever training changes, so cached tokenizers of an older recipe are rebuilt.
RECIPE_VERSION = 5

_SPLIT = r" ?\p{L}+|\s|\p{N}|[^\s\p{L}\p{N}]+"
#: A space the normalizer added: at the start, or right after a tag or special token.
_SEGMENT_START = re.compile(
    r"(\A|" + "|".join(re.escape(t) for t in (*TAGS, PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)) + ") "
)
_TAG_RE = re.compile("|".join(re.escape(t) for t in TAGS))
_META = "forksearch_tokenizer.json"


def decode(tokenizer: PreTrainedTokenizerBase, ids: Iterable[int], **kwargs: Any) -> str:
    """``tokenizer.decode``, less the space this module's normalizer put before each segment.

    The normalizer starts every text segment (the text between protocol tags and special
    tokens) with one space; removing exactly that space makes ``decode(encode(text)) == text``.
    Other tokenizers decode as they are.

    Args:
        tokenizer: Any Hugging Face tokenizer.
        ids: Token ids.
        **kwargs: ``tokenizer.decode`` arguments (``skip_special_tokens``...).
    """
    text = str(tokenizer.decode(list(ids), **kwargs))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not isinstance(backend.normalizer, normalizers.Prepend):
        return text
    return _SEGMENT_START.sub(r"\1", text)


def protocol_texts() -> list[str]:
    """Return the fixed text of the protocol: instruction, feedback, document headers."""
    reasons = ["no <search> or <answer> tag", "empty <search> tag", "empty <answer> tag"]
    return [
        protocol.render_prompt("Which city?"),
        *(protocol.INVALID_FEEDBACK.format(reason=r) for r in reasons),
        protocol.TRUNCATED_FEEDBACK,
        "Doc 1 (Title: X) Doc 2 (Title: Y) Doc 3 (Title: Z)",
    ]


def corpus_texts(corpus: Corpus) -> Iterator[str]:
    """Yield the corpus text to train on: documents (title + text), questions, answers."""
    for doc in corpus.documents:
        yield f"{doc.title}\n{doc.text}"
    for question in corpus.questions:
        yield question.question
        yield from question.answers


def text_fingerprint(corpus: Corpus) -> str:
    """A hash of everything the tokenizer is trained on: documents, questions and answers."""
    digest = hashlib.sha256(corpus.fingerprint.encode())
    for question in corpus.questions:
        digest.update(json.dumps([question.question, *question.answers]).encode())
    return digest.hexdigest()[:16]


def _word_counts(texts: Iterable[str]) -> Counter[str]:
    split = pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated")
    counts: Counter[str] = Counter()
    for text in texts:
        for piece in _TAG_RE.split(text):
            # The leading space is what the normalizer prepends to every segment.
            words = split.pre_tokenize_str(" " + piece)
            counts.update(word for word, _ in words if not word.isspace())
    return counts


def _training_lines(counts: Counter[str], common: int) -> Iterator[str]:
    # Each line holds words separated by spaces; the pre-tokenizer splits them apart again.
    line: list[str] = []
    for word, n in counts.items():
        line += [word] * (n if n >= common else 1)
        if len(line) >= 1000:
            yield " ".join(line)
            line = []
    if line:
        yield " ".join(line)


def build_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 1024,
    common_texts: Iterable[str] = (),
    common_word_count: int = COMMON_WORD_COUNT,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` (see the module docstring).

    Args:
        texts: Training text; protocol tags in it are skipped (they are added whole).
        vocab_size: Upper bound on the vocabulary, tags and special tokens included; a small
            corpus may stop earlier, when no pair of pieces is shared by two words.
        common_texts: Text whose words count as common however rare (the protocol's phrasing,
            which every episode repeats).
        common_word_count: Words at least this frequent keep their counts (see module docstring).

    Returns:
        A fast tokenizer with ``<pad>``/``<s>``/``</s>`` special tokens that prepends ``<s>``
        when ``add_special_tokens`` is true, and with every protocol tag as one token.
    """
    specials = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN]
    if vocab_size < 256 + len(specials) + len(TAGS):
        raise ValueError(
            f"expected vocab_size >= {256 + len(specials) + len(TAGS)}, got {vocab_size}"
        )
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Prepend(" ")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=vocab_size - len(TAGS),
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    counts = _word_counts(texts)
    for word in _word_counts(common_texts):
        counts[word] = max(counts[word], common_word_count)
    tok.train_from_iterator(_training_lines(counts, common_word_count), trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAGS])
    bos_id = tok.token_to_id(BOS_TOKEN)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A $B", special_tokens=[(BOS_TOKEN, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=1 << 20,
    )


def train_tokenizer(
    corpus: Corpus, vocab_size: int = 1024, cache_dir: str | Path | None = None
) -> PreTrainedTokenizerFast:
    """Return the corpus's tokenizer, trained once and cached on disk.

    Args:
        corpus: Trained on its documents, its questions and the protocol text.
        vocab_size: Upper bound on the vocabulary size (see ``build_tokenizer``).
        cache_dir: Root of the cache; defaults to ``corpora.paths.cache_dir()``. The tokenizer
            lives in ``<cache_dir>/tokenizers/<text_fingerprint(corpus)>-<vocab_size>``.

    Returns:
        The cached tokenizer when present and of the current recipe, else a newly trained one.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / "tokenizers" / f"{text_fingerprint(corpus)}-{vocab_size}"
    meta = {"recipe": RECIPE_VERSION, "common_word_count": COMMON_WORD_COUNT}
    if _is_current(target, meta):
        return PreTrainedTokenizerFast.from_pretrained(str(target))
    tokenizer = build_tokenizer(corpus_texts(corpus), vocab_size, common_texts=protocol_texts())

    def write(folder: Path) -> None:
        tokenizer.save_pretrained(str(folder))
        (folder / _META).write_text(json.dumps({**meta, "corpus": corpus.name}, indent=1) + "\n")

    publish(target, write, replace=True)  # a stale recipe is replaced whole
    return tokenizer


def _is_current(path: Path, meta: dict[str, int]) -> bool:
    try:
        saved = json.loads((path / _META).read_text())
    except (OSError, ValueError):
        return False
    return all(saved.get(k) == v for k, v in meta.items())

"""Text heuristics shared by scripted agents: names, keywords, candidate answers, rewordings.

Scripted agents see only what an LM would: the question and the retrieved text. These
functions read that text; none of them looks at gold answers or supporting documents. Term
rarity is passed in as a function, so a caller may rank terms by corpus document frequency
(:func:`rarity_from_doc_freq`) or, with no corpus at hand, by :func:`guess_rarity`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence

from agents.strategies import content_tokens, fold, name_tokens

Rarity = Callable[[str], float]
"""Maps a content token to a sort key: lower means rarer (a better search term)."""

# Letters, in any script: an uppercase one, then lowercase (or accented) ones.
_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = r"[^\W\d_A-Z]"
_NAME = re.compile(rf"\b[{_UPPER}]{_LOWER}+(?:[ -][{_UPPER}]{_LOWER}+)*\b")
_WORD = re.compile(r"[^\W_]+")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_DISAMBIGUATION = re.compile(r"\s*\([^()]*\)\s*$")
# Capitalised words that start questions or sentences without being names.
_NOT_NAMES = {
    "In",
    "Which",
    "What",
    "Who",
    "Whom",
    "Whose",
    "Why",
    "When",
    "Where",
    "How",
    "The",
    "Its",
    "It",
    "He",
    "She",
    "They",
    "Born",
    "Founded",
    "Today",
    "Since",
    "With",
    "Around",
    "Were",
    "Was",
    "Is",
    "Are",
    "Did",
    "Does",
    "Do",
    "A",
    "An",
}


def names_in(text: str) -> list[str]:
    """Capitalised word sequences that look like names, in order, without repeats."""
    out: list[str] = []
    for match in _NAME.finditer(text):
        words = match.group(0).split(" ")
        while words and words[0] in _NOT_NAMES:
            words = words[1:]
        name = " ".join(words)
        if name and name not in out:
            out.append(name)
    return out


def keywords(text: str) -> list[str]:
    """Content words of ``text`` (stopwords and question words removed), original case kept."""
    return [w for w in _WORD.findall(text) if content_tokens(w)]


def plain_title(title: str) -> str:
    """A document title without its disambiguation (``"Lilu (mythology)"`` -> ``"Lilu"``)."""
    return _DISAMBIGUATION.sub("", title) or title


def mentions(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words (case-sensitive)."""
    return bool(phrase) and re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


# --- keyword queries ------------------------------------------------------------------------


def term_forms(question: str) -> dict[str, str]:
    """The question's distinct content tokens, in order, each with its first spelling."""
    forms: dict[str, str] = {}
    for word in _WORD.findall(question):
        for token in content_tokens(word):
            forms.setdefault(token, word)
    return forms


def rarity_from_doc_freq(doc_freq: Mapping[str, int]) -> Rarity:
    """Rank terms by document frequency (a term no document has counts as rarest)."""
    return lambda token: float(doc_freq.get(token, 0))


def guess_rarity(question: str) -> Rarity:
    """Rank terms without a corpus: names and numbers first, then longer words first.

    Longer words are rarer in English (Zipf's law of abbreviation), and names and numbers pick
    out few documents, so this stands in for document frequency when no corpus is at hand.
    """
    names = name_tokens(question)

    def rarity(token: str) -> float:
        specific = token in names or any(ch.isdigit() for ch in token)
        return -len(token) - (100.0 if specific else 0.0)

    return rarity


def keyword_budget(n_terms: int, max_terms: int = 4) -> int:
    """How many of a question's ``n_terms`` distinct terms a keyword query keeps.

    Fewer than 80% of them (the labeller calls a query with 80% of the question's terms
    ``verbatim``), at most ``max_terms``, and at least one.
    """
    return max(1, min(max_terms, (4 * n_terms - 1) // 5))


def keyword_query(
    question: str,
    rarity: Rarity,
    among: Collection[str] | None = None,
    max_terms: int = 4,
) -> str:
    """A keyword query: the question's rarest few content words, in the question's order.

    The query keeps fewer than 80% of the question's terms (:func:`keyword_budget`), and at
    least one word that is not a name (a query of names alone is an entity lookup): when every
    pick is a name, the rarest non-name word is added, or replaces the last pick when the budget
    is full. Ties go to the earlier word.

    Args:
        question: The question.
        rarity: Sort key of a token (lower is rarer).
        among: Tokens the picks should come from (e.g. the tokens of a target document); all
            question tokens when None or when no question token is among them.
        max_terms: Most words in the query.

    Returns:
        The query, or ``""`` for a question without content words.
    """
    forms = term_forms(question)
    order = {tok: i for i, tok in enumerate(forms)}
    pool = [t for t in forms if among is None or t in among] or list(forms)
    ranked = sorted(pool, key=lambda t: (rarity(t), order[t]))
    picked = ranked[: keyword_budget(len(forms), max_terms)]
    names = name_tokens(question)
    others = sorted((t for t in forms if t not in names), key=lambda t: (rarity(t), order[t]))
    if picked and others and all(t in names for t in picked):
        # Prefer a non-name word from the pool; add it when the budget allows, else swap.
        extra = next((t for t in others if t in pool), others[0])
        if len(picked) < keyword_budget(len(forms), max_terms):
            picked.append(extra)
        else:
            picked[-1] = extra
    return " ".join(forms[t] for t in forms if t in picked)


# --- reformulations -------------------------------------------------------------------------

THESAURUS: dict[str, tuple[str, ...]] = {
    # people and their lives
    "born": ("hometown", "birthplace", "birth"),
    "birth": ("born", "hometown"),
    "birthplace": ("hometown", "born"),
    "died": ("death", "deceased"),
    "die": ("death", "deceased"),
    "death": ("died", "deceased"),
    "lived": ("resided", "residence"),
    "married": ("spouse", "wedding"),
    "spouse": ("married", "partner"),
    "wife": ("spouse", "married"),
    "husband": ("spouse", "married"),
    "father": ("parent", "dad"),
    "mother": ("parent", "mom"),
    "son": ("child", "offspring"),
    "daughter": ("child", "offspring"),
    "child": ("offspring", "kid"),
    "citizen": ("nationality", "citizenship"),
    "citizenship": ("nationality", "citizen"),
    "profession": ("occupation", "job"),
    "occupation": ("profession", "job"),
    "politician": ("statesman", "legislator"),
    "president": ("leader", "head"),
    "leader": ("head", "chief"),
    "member": ("membership", "affiliated"),
    "members": ("membership", "lineup"),
    # organisations and work
    "company": ("enterprise", "firm", "business"),
    "firm": ("company", "business"),
    "founded": ("inception", "established", "creation"),
    "founder": ("creator", "originator"),
    "formed": ("established", "formation"),
    "established": ("founded", "inception"),
    "created": ("creator", "origin"),
    "creator": ("originator", "inventor"),
    "headquartered": ("seat", "base"),
    "headquarters": ("seat", "base", "offices"),
    "based": ("headquarters", "base"),
    "work": ("employment", "job"),
    "works": ("employment", "job"),
    "worked": ("employment", "job"),
    "employs": ("employment", "staff"),
    "employed": ("employment", "job"),
    "owns": ("owner", "ownership"),
    "owned": ("owner", "ownership"),
    "team": ("club", "squad"),
    "club": ("team", "squad"),
    "league": ("competition", "division"),
    "school": ("academy", "college"),
    "university": ("college", "campus"),
    # places
    "city": ("town", "municipality"),
    "town": ("city", "municipality"),
    "country": ("nation", "homeland"),
    "nation": ("country", "homeland"),
    "state": ("province", "territory"),
    "county": ("district", "shire"),
    "district": ("county", "area"),
    "region": ("area", "territory"),
    "area": ("region", "zone"),
    "located": ("situated", "location", "site"),
    "location": ("situated", "site"),
    "place": ("location", "site"),
    "capital": ("seat", "metropolis"),
    "border": ("bordering", "adjacent"),
    "borders": ("bordering", "adjacent"),
    "continent": ("landmass", "hemisphere"),
    "population": ("inhabitants", "residents"),
    "river": ("stream", "waterway"),
    "language": ("tongue", "dialect"),
    "religion": ("faith", "creed"),
    # time and order
    "year": ("date",),
    "date": ("year", "time"),
    "first": ("oldest", "earliest", "initial"),
    "earlier": ("oldest", "before"),
    "older": ("elder", "oldest"),
    "oldest": ("earliest", "eldest"),
    "last": ("final", "latest"),
    "largest": ("biggest", "greatest"),
    "biggest": ("largest", "greatest"),
    # works and performances
    "film": ("movie", "picture"),
    "movie": ("film", "picture"),
    "song": ("track", "single"),
    "album": ("record", "release"),
    "record": ("album", "recording"),
    "band": ("group", "ensemble"),
    "group": ("band", "ensemble"),
    "singer": ("vocalist", "musician"),
    "performer": ("artist", "musician"),
    "artist": ("performer", "musician"),
    "musician": ("performer", "artist"),
    "actor": ("performer", "star"),
    "actress": ("performer", "star"),
    "director": ("filmmaker", "directed"),
    "directed": ("filmmaker", "director"),
    "wrote": ("author", "writer"),
    "written": ("author", "writer"),
    "author": ("writer", "novelist"),
    "writer": ("author", "novelist"),
    "novel": ("book", "fiction"),
    "book": ("publication", "volume"),
    "published": ("publisher", "publication"),
    "released": ("release", "premiere"),
    "played": ("performed", "portrayed"),
    "plays": ("performs", "portrays"),
    "starred": ("cast", "starring"),
    "composer": ("songwriter", "musician"),
    "composed": ("composer", "music"),
    "produced": ("producer", "production"),
    "developed": ("developer", "development"),
    "character": ("role", "persona"),
    "role": ("character", "part"),
    "television": ("tv", "broadcast"),
    "series": ("show", "programme"),
    "magazine": ("periodical", "journal"),
    "award": ("prize", "honour"),
    "won": ("winner", "victory"),
    "win": ("winner", "victory"),
    "known": ("famous", "called"),
    "named": ("namesake", "called"),
    "species": ("organism", "taxon"),
    "genus": ("taxon", "classification"),
}
"""Everyday synonyms of relation words common in multi-hop questions, most natural first."""

# Words naming what a question asks for, by its wh-phrase: a rewording of the question's intent
# that carries new words even when none of its relation words has a synonym above.
_ANSWER_TYPES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"\bhow (many|much)\b|\bnumber of\b", re.I), ("number", "total", "count")),
    (re.compile(r"\bwhen\b|\b(what|which) (year|date)\b", re.I), ("date", "time", "period")),
    (re.compile(r"\bwhere\b", re.I), ("location", "place", "site")),
    (re.compile(r"\bwho(m|se)?\b", re.I), ("person", "individual", "identity")),
    (re.compile(r".", re.S), ("overview", "profile", "description")),
)


def reword(words: Sequence[str], question: str, avoid: Collection[str] = ()) -> list[str]:
    """New words for ``words``: a synonym of each, or else what the question asks for.

    A synonym is skipped when the question already has it or it is in ``avoid`` (e.g. the
    tokens of text already retrieved), so the rewording brings words new to the episode.

    Args:
        words: Relation words to reword (any case).
        question: The question (its tokens are never offered as new words).
        avoid: Tokens not to offer.

    Returns:
        The new words, in the order of ``words``, without repeats; never empty unless every
        candidate is avoided.
    """
    used = set(content_tokens(question)) | set(avoid)
    out: list[str] = []
    for word in words:
        fresh = [s for s in THESAURUS.get(fold(word), ()) if s not in used and s not in out]
        out += fresh[:1]
    if not out:
        kind = next(types for pattern, types in _ANSWER_TYPES if pattern.search(question))
        out = [t for t in kind if t not in used][:1]
    return out


def stem(word: str) -> str:
    """A crude prefix stem (``founder``/``founded`` -> ``foun``) for matching relation words."""
    return word.lower()[:4]


def answer_kind(question: str) -> str:
    """What the question asks for: ``year``, ``person``, ``choice`` or ``name``."""
    q = question.lower()
    if " or " in q and q.rstrip("?").split(",")[-1].strip().count(" or ") == 1:
        return "choice"
    if "year" in q or q.startswith("when"):
        return "year"
    if q.startswith("who"):
        return "person"
    return "name"


def choice_options(question: str) -> list[str]:
    """The two options of an ``..., A or B?`` question."""
    tail = question.rstrip("?").split(",")[-1]
    return [part.strip() for part in tail.split(" or ")]


def extract_answer(
    question: str, docs: Sequence[tuple[str, str]], exclude: Sequence[str] = ()
) -> str:
    """Pick an answer span from retrieved ``(title, text)`` docs by lexical cues.

    Each candidate span of the right kind (a year, a name, or one of two options) that the
    question does not already name is scored by the sentence it sits in: +1 for every relation
    word of the question (prefix-stemmed) in the sentence, +0.5 for every word of the question's
    names, +2 if a relation word stands within the three words before the span. Ties go to the
    earlier document and the earlier span.
    """
    kind = answer_kind(question)
    if kind == "choice":
        return _pick_choice(question, docs)
    names = names_in(question)
    name_words = {w.lower() for n in names for w in n.split()}
    relation = {stem(w) for w in keywords(question) if w.lower() not in name_words}
    banned = {n.lower() for n in names_in(question)} | {e.lower() for e in exclude}
    best: tuple[float, str] = (float("-inf"), "")
    for rank, (title, text) in enumerate(docs):
        on_topic = 1.5 if title in names else 0.0
        for sentence in _SENTENCE.split(text):
            raw = re.findall(r"[A-Za-z0-9]+", sentence)
            words = {stem(w) for w in raw}
            base = len(relation & words) + 0.5 * len(name_words & {w.lower() for w in raw})
            base += on_topic
            for start, span in _spans(sentence, kind):
                low = span.lower()
                if any(low in b or b in low for b in banned):
                    continue
                before = {stem(w) for w in re.findall(r"[A-Za-z0-9]+", sentence[:start])[-3:]}
                score = base + (2.0 if relation & before else 0.0) - 0.01 * rank
                if score > best[0]:
                    best = (score, span)
    return best[1]


def _spans(sentence: str, kind: str) -> list[tuple[int, str]]:
    """Candidate answer spans with their character offsets."""
    if kind == "year":
        return [(m.start(), m.group(0)) for m in _YEAR.finditer(sentence)]
    spans = []
    for match in _NAME.finditer(sentence):
        words = match.group(0).split(" ")
        offset = match.start()
        while words and words[0] in _NOT_NAMES:
            offset += len(words[0]) + 1
            words = words[1:]
        if words and (kind != "person" or len(words) > 1):
            spans.append((offset, " ".join(words)))
    return spans


def _pick_choice(question: str, docs: Sequence[tuple[str, str]]) -> str:
    options = choice_options(question)
    years: dict[str, int] = {}
    for option in options:
        for title, text in docs:
            if title == option or text.startswith(option):
                found = _YEAR.findall(text)
                if found:
                    years[option] = int(found[0])
                    break
    if len(years) < 2:
        return options[0]
    later = any(w in question.lower() for w in ("later", "last", "younger", "most recently"))
    pick = max if later else min
    return pick(years, key=lambda o: years[o])

"""Questions over the synthetic world: 1-hop attribute, 2-hop bridge and comparison types.

The types are designed so that no single query strategy is best for all: attribute questions
want an entity lookup, bridge questions need a second query built from retrieved text (the
bridge document shares no name with the question), comparisons need both entities found.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from corpora.records import Question
from corpora.synthetic.documents import doc_id
from corpora.synthetic.world import Company, Person, World

QTYPES = ("attribute", "bridge", "comparison")


@dataclass(frozen=True)
class Candidate:
    """A question before it is assigned a split and an id."""

    qtype: str
    template: str
    question: str
    answer: str
    supporting_ids: tuple[str, ...]
    anchors: tuple[str, ...]  # entities whose split decides the question's split
    entities: tuple[str, ...]  # names in the question, then bridge names, in reasoning order


def _attribute(template: str, question: str, answer: str, doc: str, name: str) -> Candidate:
    """A 1-hop question about ``name``, answered by its own document ``doc``."""
    return Candidate("attribute", template, question, answer, (doc,), (name,), (name,))


def _bridge(template: str, question: str, answer: str, docs: tuple[str, str],
            names: tuple[str, str]) -> Candidate:
    """A 2-hop question about ``names[0]`` through the bridge entity ``names[1]``."""
    return Candidate("bridge", template, question, answer, docs, names[:1], names)


def _person_questions(p: Person, world: World) -> list[Candidate]:
    pid = doc_id("person", p.name)
    city = world.cities[p.birth_city]
    employer = world.companies[p.employer]
    city_docs = (pid, doc_id("city", city.name))
    employer_docs = (pid, doc_id("company", employer.name))
    return [
        _attribute("person_city", f"In which city was {p.name} born?", p.birth_city, pid, p.name),
        _attribute("person_year", f"In what year was {p.name} born?", str(p.birth_year), pid,
                   p.name),
        _attribute("person_employer", f"Which company does {p.name} work for?", p.employer, pid,
                   p.name),
        _bridge("person_country", f"In which country was {p.name} born?", city.country,
                city_docs, (p.name, city.name)),
        _bridge("employer_founder", f"Who founded the company that {p.name} works for?",
                employer.founder, employer_docs, (p.name, employer.name)),
        _bridge("employer_year", f"In what year was the company that employs {p.name} founded?",
                str(employer.founded), employer_docs, (p.name, employer.name)),
    ]


def _company_questions(c: Company, world: World) -> list[Candidate]:
    cid = doc_id("company", c.name)
    founder = world.people[c.founder]
    hq = world.cities[c.headquarters]
    founder_docs = (cid, doc_id("person", founder.name))
    return [
        _attribute("company_year", f"In what year was {c.name} founded?", str(c.founded), cid,
                   c.name),
        _attribute("company_city", f"In which city is {c.name} headquartered?", c.headquarters,
                   cid, c.name),
        _attribute("company_founder", f"Who founded {c.name}?", c.founder, cid, c.name),
        _bridge("founder_city", f"In which city was the founder of {c.name} born?",
                founder.birth_city, founder_docs, (c.name, founder.name)),
        _bridge("founder_year", f"In what year was the founder of {c.name} born?",
                str(founder.birth_year), founder_docs, (c.name, founder.name)),
        _bridge("company_country", f"In which country is {c.name} headquartered?", hq.country,
                (cid, doc_id("city", hq.name)), (c.name, hq.name)),
    ]


def _comparison(template: str, question: str, answer: str, kind: str,
                names: tuple[str, str]) -> Candidate:
    """A question comparing two entities of ``kind``; both documents support it."""
    docs = (doc_id(kind, names[0]), doc_id(kind, names[1]))
    return Candidate("comparison", template, question, answer, docs, names, names)


def _comparisons(world: World, rng: random.Random, n_pairs: int) -> list[Candidate]:
    out: list[Candidate] = []
    people = list(world.people.values())
    companies = list(world.companies.values())
    for _ in range(n_pairs):
        p1, p2 = rng.sample(people, 2)
        if p1.birth_year != p2.birth_year:
            older = p1 if p1.birth_year < p2.birth_year else p2
            out.append(_comparison("born_first", f"Who was born first, {p1.name} or {p2.name}?",
                                   older.name, "person", (p1.name, p2.name)))
        c1, c2 = rng.sample(companies, 2)
        if c1.founded != c2.founded:
            earlier = c1 if c1.founded < c2.founded else c2
            out.append(_comparison(
                "founded_first", f"Which company was founded earlier, {c1.name} or {c2.name}?",
                earlier.name, "company", (c1.name, c2.name)))
    return out


HOLDOUTS = ("entity", "question")


def world_questions(
    world: World,
    rng: random.Random,
    sizes: dict[str, int],
    split_fractions: dict[str, float],
    holdout: str = "entity",
) -> list[Question]:
    """Generate questions, split them and sample ``sizes[split]`` per split.

    With ``holdout="entity"`` each person and company is assigned to one split, and a question
    belongs to the split of its anchor entities (comparisons whose two anchors disagree are
    dropped), so no entity a test question asks about is asked about in training: a policy must
    copy unseen names. With ``holdout="question"`` each question draws its own split, so a test
    question is new but its entity may be asked about, in other words, in training (as in
    HotpotQA). Within a split the three types are balanced.
    """
    if holdout not in HOLDOUTS:
        raise ValueError(f"unknown holdout {holdout!r}; expected one of {', '.join(HOLDOUTS)}")
    anchors = sorted(world.people) + sorted(world.companies)
    splits, weights = zip(*split_fractions.items())
    anchor_split = {name: rng.choices(splits, weights)[0] for name in anchors}
    candidates = [q for p in world.people.values() for q in _person_questions(p, world)]
    candidates += [q for c in world.companies.values() for q in _company_questions(c, world)]
    candidates += _comparisons(world, rng, n_pairs=4 * len(anchors))

    by_split_type: dict[tuple[str, str], list[Candidate]] = {}
    seen: set[str] = set()
    for cand in candidates:
        if holdout == "question":
            split = {rng.choices(splits, weights)[0]}
        else:
            split = {anchor_split[a] for a in cand.anchors}
        if len(split) == 1 and cand.question not in seen:
            seen.add(cand.question)
            by_split_type.setdefault((split.pop(), cand.qtype), []).append(cand)

    questions: list[Question] = []
    for split in splits:
        quota = _balanced_quota(
            sizes[split], [len(by_split_type.get((split, t), [])) for t in QTYPES]
        )
        for qtype, n in zip(QTYPES, quota):
            chosen = rng.sample(by_split_type.get((split, qtype), []), n)
            for i, cand in enumerate(chosen):
                questions.append(
                    Question(
                        qid=f"syn-{split}-{qtype}-{i:04d}",
                        question=cand.question,
                        answers=(cand.answer,),
                        supporting_ids=cand.supporting_ids,
                        hops=len(cand.supporting_ids),
                        split=split,
                        qtype=qtype,
                        entities=cand.entities,
                    )
                )
    return questions


def _balanced_quota(total: int, available: list[int]) -> list[int]:
    """Split ``total`` as evenly as possible over types, moving what one type lacks to others."""
    quota = [0] * len(available)
    remaining = total
    while remaining > 0:
        open_types = [i for i, n in enumerate(available) if quota[i] < n]
        if not open_types:
            break
        share = max(1, remaining // len(open_types))
        for i in open_types:
            take = min(share, available[i] - quota[i], remaining)
            quota[i] += take
            remaining -= take
    return quota

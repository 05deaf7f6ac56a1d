"""Invented, pronounceable entity names built from syllables.

Names are made of syllables so that a subword tokenizer learns the pieces and can spell names
it has never seen; some names are near-duplicates (one syllable apart) to make retrieval hard.
"""

from __future__ import annotations

import random

ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "br", "dr")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
CODAS = ("", "", "", "n", "r", "l", "s", "x")


def syllable(rng: random.Random) -> str:
    """One consonant-vowel(-consonant) syllable."""
    return rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)


def word(rng: random.Random, n_syllables: int) -> str:
    """A capitalised word of ``n_syllables`` syllables."""
    return "".join(syllable(rng) for _ in range(n_syllables)).capitalize()


def near_duplicate(rng: random.Random, name: str) -> str:
    """``name`` with the last syllable of its last word replaced (e.g. Mekali -> Mekaro)."""
    *head, last = name.split(" ")
    stem = last[: max(2, len(last) - 2)]
    return " ".join([*head, (stem + rng.choice(VOWELS) + rng.choice(CODAS)).capitalize()])


class NameBook:
    """Hands out unique names; every name is remembered so none is issued twice."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def fresh(self, make: str) -> str:
        """Return an unused name of kind ``person``, ``company``, ``city`` or ``country``."""
        for _ in range(1000):
            name = self._make(make)
            if name not in self.used:
                self.used.add(name)
                return name
        raise RuntimeError(f"could not find an unused {make} name; reduce the world size")

    def twin(self, name: str) -> str | None:
        """Return an unused near-duplicate of ``name``, or None if none was found."""
        for _ in range(50):
            candidate = near_duplicate(self.rng, name)
            if candidate != name and candidate not in self.used:
                self.used.add(candidate)
                return candidate
        return None

    def _make(self, make: str) -> str:
        rng = self.rng
        if make == "person":
            return f"{word(rng, rng.choice((1, 2)))} {word(rng, rng.choice((2, 3)))}"
        if make == "company":
            suffix = rng.choice(("Systems", "Labs", "Holdings", "Works", "Dynamics", "Group"))
            return f"{word(rng, 2)} {suffix}"
        if make == "city":
            return word(rng, rng.choice((2, 3)))
        if make == "country":
            return word(rng, 2) + rng.choice(("ia", "land", "ar", "esh"))
        raise ValueError(f"expected person, company, city or country, got {make!r}")

"""One encyclopedia-style document per entity, with facts phrased in varied templates."""

from __future__ import annotations

import random

from corpora.records import Document
from corpora.synthetic.world import World

BIRTH = (
    "{name} is {a_occ} who was born in {city} in {year}.",
    "Born in {year} in {city}, {name} works as {a_occ}.",
    "{name} ({year}) is {a_occ} whose birthplace is {city}.",
    "{name} is {a_occ}. {Pron} was born in {year}, in the city of {city}.",
)
EMPLOYER = (
    "{Pron} works for {company}.",
    "{name} is employed by {company}.",
    "{Pron} is on the staff of {company}.",
    "Today {pron} works at {company}.",
)
COMPANY = (
    "{name} is {a_industry} company founded in {year} by {founder}. "
    "Its headquarters are in {city}.",
    "Founded by {founder} in {year}, {name} is {a_industry} firm headquartered in {city}.",
    "{name} was established in {year}. Its founder is {founder}, and the company is based in "
    "{city}.",
    "{name}, {a_industry} business, has its head office in {city}. {founder} started it in {year}.",
)
CITY = (
    "{name} is a city in {country} with about {pop} inhabitants.",
    "{name} lies in {country}. Around {pop} people live there.",
    "With a population of {pop}, {name} is one of the cities of {country}.",
)
CAPITAL = "It is the capital of {country}."
COUNTRY = "{name} is a country whose capital is {capital}. Its currency is the {currency}."


def with_article(noun: str) -> str:
    """``engineer`` -> ``an engineer``."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def doc_id(kind: str, name: str) -> str:
    """The document id of an entity: ``person/Toraven_Mekali``."""
    return f"{kind}/{name.replace(' ', '_')}"


def world_documents(world: World, rng: random.Random) -> list[Document]:
    """Render every entity of ``world`` as one document (title = entity name)."""
    docs: list[Document] = []
    for p in world.people.values():
        pron = rng.choice(("he", "she"))
        fields = {
            "name": p.name,
            "a_occ": with_article(p.occupation),
            "city": p.birth_city,
            "year": p.birth_year,
            "company": p.employer,
            "pron": pron,
            "Pron": pron.capitalize(),
        }
        text = f"{rng.choice(BIRTH)} {rng.choice(EMPLOYER)}".format(**fields)
        docs.append(Document(doc_id("person", p.name), p.name, text))
    for c in world.companies.values():
        text = rng.choice(COMPANY).format(
            name=c.name,
            a_industry=with_article(c.industry),
            year=c.founded,
            founder=c.founder,
            city=c.headquarters,
        )
        docs.append(Document(doc_id("company", c.name), c.name, text))
    capitals = {country.capital: country.name for country in world.countries.values()}
    for city in world.cities.values():
        text = rng.choice(CITY).format(
            name=city.name, country=city.country, pop=f"{city.population:,}"
        )
        if city.name in capitals:
            text += " " + CAPITAL.format(country=capitals[city.name])
        docs.append(Document(doc_id("city", city.name), city.name, text))
    for country in world.countries.values():
        text = COUNTRY.format(name=country.name, capital=country.capital, currency=country.currency)
        docs.append(Document(doc_id("country", country.name), country.name, text))
    docs.sort(key=lambda d: d.doc_id)
    return docs

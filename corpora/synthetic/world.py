"""The entities and relations of the synthetic multi-hop world."""

from __future__ import annotations

import random
from dataclasses import dataclass

from corpora.synthetic.names import NameBook

OCCUPATIONS = (
    "engineer",
    "painter",
    "chemist",
    "architect",
    "economist",
    "poet",
    "surgeon",
    "historian",
    "pilot",
    "composer",
    "lawyer",
    "geologist",
)
INDUSTRIES = (
    "software",
    "shipping",
    "textile",
    "mining",
    "pharmaceutical",
    "aerospace",
    "publishing",
    "energy",
    "robotics",
    "food",
)


@dataclass(frozen=True)
class Country:
    """A country; its capital is one of its cities."""

    name: str
    capital: str
    currency: str


@dataclass(frozen=True)
class City:
    """A city located in a country."""

    name: str
    country: str
    population: int


@dataclass(frozen=True)
class Person:
    """A person born in a city in a year, working for a company."""

    name: str
    birth_city: str
    birth_year: int
    occupation: str
    employer: str


@dataclass(frozen=True)
class Company:
    """A company founded by a person in a year, headquartered in a city."""

    name: str
    founder: str
    founded: int
    headquarters: str
    industry: str


@dataclass(frozen=True)
class World:
    """All entities of one generated world, keyed by name."""

    countries: dict[str, Country]
    cities: dict[str, City]
    people: dict[str, Person]
    companies: dict[str, Company]


def build_world(
    rng: random.Random,
    n_countries: int,
    n_cities: int,
    n_people: int,
    n_companies: int,
    twin_fraction: float,
) -> World:
    """Generate entities and relations; ``twin_fraction`` of them get a near-namesake."""
    if n_cities < n_countries or n_people < n_companies or min(n_countries, n_companies) < 2:
        raise ValueError(
            "expected n_countries >= 2, n_cities >= n_countries, n_companies >= 2 and "
            f"n_people >= n_companies, got {n_countries=}, {n_cities=}, {n_people=}, {n_companies=}"
        )
    names = NameBook(rng)
    country_names = [names.fresh("country") for _ in range(n_countries)]
    city_names = [names.fresh("city") for _ in range(n_cities)]
    # Every country gets at least one city (its capital); the rest are spread at random.
    city_country = {c: country_names[i] for i, c in enumerate(city_names[:n_countries])}
    for c in city_names[n_countries:]:
        city_country[c] = rng.choice(country_names)
    cities = {c: City(c, city_country[c], rng.randrange(20, 2000) * 1000) for c in city_names}
    currencies = [names.fresh("city").lower() for _ in country_names]
    countries = {
        n: Country(n, capital=city_names[i], currency=currencies[i])
        for i, n in enumerate(country_names)
    }

    company_names = _names_with_twins(names, "company", n_companies, twin_fraction, rng)
    person_names = _names_with_twins(names, "person", n_people, twin_fraction, rng)
    people = {
        p: Person(
            name=p,
            birth_city=rng.choice(city_names),
            birth_year=rng.randrange(1930, 1990),
            occupation=rng.choice(OCCUPATIONS),
            employer=rng.choice(company_names),
        )
        for p in person_names
    }
    founders = rng.sample(person_names, n_companies)
    companies = {}
    for c, founder in zip(company_names, founders):
        founded = rng.randrange(people[founder].birth_year + 20, 2021)
        companies[c] = Company(c, founder, founded, rng.choice(city_names), rng.choice(INDUSTRIES))
    return World(countries, cities, people, companies)


def _names_with_twins(
    names: NameBook, kind: str, n: int, twin_fraction: float, rng: random.Random
) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        name = names.fresh(kind)
        out.append(name)
        if len(out) < n and rng.random() < twin_fraction:
            twin = names.twin(name)
            if twin is not None:
                out.append(twin)
    rng.shuffle(out)
    return out

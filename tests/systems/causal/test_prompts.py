"""The causal-response prompt data: its counts and shapes, and that no graded description names its concept."""

from __future__ import annotations

import re

from athanor.systems.causal import prompts as P


def test_concepts_are_80_distinct_lowercase_nouns():
    assert len(P.CONCEPTS) == 80 and len(set(P.CONCEPTS)) == 80
    for c in P.CONCEPTS:
        assert c == c.lower() == c.strip() and 1 <= len(c.split()) <= 2 and re.fullmatch(r"[a-z ]+", c), c


def test_no_concept_contains_another_as_a_word():
    for a in P.CONCEPTS:
        for b in P.CONCEPTS:
            if a != b:
                assert not re.search(rf"\b{re.escape(b)}\b", a), (a, b)


def test_concept_words_and_mentions():
    assert P.concept_words("coffee") == ("coffee", "coffees", "coffeees")
    assert set(P.concept_words("ice cream")) >= {"ice cream", "ice creams", "cream", "creams"}
    assert "ice" not in P.concept_words("ice cream")  # short words alone give nothing away
    assert "libraries" in P.concept_words("library") and "honeies" not in P.concept_words("honey")
    assert P.mentions("I love Coffees", "coffee") and P.mentions("coffee", "coffee")
    assert P.mentions("COFFEE beans", "coffee") and P.mentions("whipped cream", "ice cream")
    assert P.mentions("two public libraries", "library")
    assert not P.mentions("a hot drink", "coffee") and not P.mentions("", "coffee")


def test_graded_descriptions_grow_and_never_name_their_concept():
    assert len(P.GRADED) == 12 and P.GRADED[0][0] == "coffee"
    assert len({c for c, _ in P.GRADED}) == 12
    for concept, levels in P.GRADED:
        assert concept in P.CONCEPTS
        assert len(levels) == 4 and all(isinstance(d, str) and d.strip() == d for d in levels)
        assert all(len(a) < len(b) for a, b in zip(levels, levels[1:], strict=False)), concept
        for d in levels:
            assert not P.mentions(d, concept), (concept, d)
    coffee = " ".join(P.GRADED[0][1]).lower()
    assert not any(w in coffee for w in ("caff", "café", "cafe", "espresso", "latte"))


def test_lists():
    assert len(P.LISTS) == 12
    headers = [h for h, _ in P.LISTS]
    assert len(set(headers)) == 12
    assert {"Things you can read", "Prefectures of Japan"} <= set(headers)
    for header, items in P.LISTS:
        assert header.strip() == header and header
        assert len(items) == 3 and len(set(items)) == 3 and all(i.strip() for i in items), header


def test_stories():
    assert len(P.STORIES) == 6
    assert P.STORIES[0][:2] == ("Tell me a story about apples.", "Is this something an old man would say?")
    for opening, criterion, held_out in P.STORIES:
        assert opening.startswith("Tell me a story about ") and opening.endswith(".")
        assert criterion.endswith("?") and held_out.endswith("?") and criterion != held_out
    assert len({s[1] for s in P.STORIES}) == 6

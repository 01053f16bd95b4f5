"""Identifiers that look alike have one skeleton; different ones do not."""

from __future__ import annotations

import pytest

from broker.core.confusables import confusable_with, skeleton

COUNCIL = "calderbridge-city-council"


@pytest.mark.parametrize(
    "look_alike",
    [
        "calderbridge-city-counciI",  # capital I for l
        "calderbridge-city-counci1",  # digit 1 for l
        "Calderbridge-City-Council",  # case
        "calderbridge_city.council",  # separators
        "c\u0430lderbridge-city-council",  # Cyrillic a
        "calderbridge-city-c\u043euncil",  # Cyrillic o
        "calderbridge-city-c\u03bfuncil",  # Greek omicron
        "calderbridge-c\u0456ty-council",  # Cyrillic i
        "\uff43alderbridge-city-council",  # fullwidth c (NFKC)
    ],
)
def test_look_alikes_share_the_skeleton(look_alike: str) -> None:
    assert skeleton(look_alike) == skeleton(COUNCIL)
    assert confusable_with(look_alike, ["other-party", COUNCIL]) == COUNCIL


def test_zero_and_capital_o() -> None:
    assert skeleton("po1ice-0ne") == skeleton("police-One")


@pytest.mark.parametrize(
    "different", ["calderbridge-city-councii", "calderbridge-county-council", "r9x", "council"]
)
def test_different_ids_are_not_confusable(different: str) -> None:
    assert confusable_with(different, [COUNCIL, "r9z"]) is None


def test_an_exact_repeat_is_not_a_look_alike() -> None:
    assert confusable_with(COUNCIL, [COUNCIL]) is None

"""Identifiers a reader could take for one another (``calderbridge-city-counciI`` with a capital I
for ``calderbridge-city-council``): the registry refuses a new party or client whose id looks like
an existing one. Pure functions, no I/O.

:func:`skeleton` maps an identifier to a form in which look-alikes coincide: Unicode NFKC, common
Cyrillic and Greek letters that look Latin replaced by that Latin letter, the digit 1, capital I
and the pipe as ``l``, the digit 0 as ``o``, then case folded, and the separators ``.`` ``_``
``-`` made one. Two identifiers are confusable when their skeletons are equal (after the Unicode
Technical Standard #39 idea of a skeleton, with a small table of the look-alikes that matter in
identifiers of the one ASCII pattern, and of the Cyrillic and Greek letters an attacker would use).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Final

_LOOK_ALIKES: Final[dict[int, str]] = {
    # Latin letters and digits read as one another (before case folding: a lower-case i is not
    # an l, a capital I is).
    ord("I"): "l",
    ord("1"): "l",
    ord("|"): "l",
    ord("0"): "o",
    ord("O"): "o",
    # Cyrillic
    0x0430: "a",  # cyrillic small letter a
    0x0432: "b",  # cyrillic small letter ve
    0x0435: "e",  # cyrillic small letter ie
    0x0451: "e",  # cyrillic small letter io
    0x043A: "k",  # cyrillic small letter ka
    0x043C: "m",  # cyrillic small letter em
    0x043D: "h",  # cyrillic small letter en
    0x043E: "o",  # cyrillic small letter o
    0x0440: "p",  # cyrillic small letter er
    0x0441: "c",  # cyrillic small letter es
    0x0442: "t",  # cyrillic small letter te
    0x0443: "y",  # cyrillic small letter u
    0x0445: "x",  # cyrillic small letter ha
    0x0456: "i",  # cyrillic small letter byelorussian-ukrainian i
    0x0457: "i",  # cyrillic small letter yi
    0x0458: "j",  # cyrillic small letter je
    0x0455: "s",  # cyrillic small letter dze
    0x0501: "d",  # cyrillic small letter komi de
    0x04BB: "h",  # cyrillic small letter shha
    0x04CF: "l",  # cyrillic small letter palochka
    0x051B: "q",  # cyrillic small letter qa
    0x051D: "w",  # cyrillic small letter we
    0x0410: "a",  # cyrillic capital letter a
    0x0412: "b",  # cyrillic capital letter ve
    0x0415: "e",  # cyrillic capital letter ie
    0x041A: "k",  # cyrillic capital letter ka
    0x041C: "m",  # cyrillic capital letter em
    0x041D: "h",  # cyrillic capital letter en
    0x041E: "o",  # cyrillic capital letter o
    0x0420: "p",  # cyrillic capital letter er
    0x0421: "c",  # cyrillic capital letter es
    0x0422: "t",  # cyrillic capital letter te
    0x0425: "x",  # cyrillic capital letter ha
    0x0406: "l",  # cyrillic capital letter byelorussian-ukrainian i
    0x0408: "j",  # cyrillic capital letter je
    0x0405: "s",  # cyrillic capital letter dze
    # Greek
    0x03B1: "a",  # greek small letter alpha
    0x03BF: "o",  # greek small letter omicron
    0x03BD: "v",  # greek small letter nu
    0x03C1: "p",  # greek small letter rho
    0x03C4: "t",  # greek small letter tau
    0x03C5: "u",  # greek small letter upsilon
    0x03B9: "i",  # greek small letter iota
    0x03BA: "k",  # greek small letter kappa
    0x0391: "a",  # greek capital letter alpha
    0x0392: "b",  # greek capital letter beta
    0x0395: "e",  # greek capital letter epsilon
    0x0396: "z",  # greek capital letter zeta
    0x0397: "h",  # greek capital letter eta
    0x0399: "l",  # greek capital letter iota
    0x039A: "k",  # greek capital letter kappa
    0x039C: "m",  # greek capital letter mu
    0x039D: "n",  # greek capital letter nu
    0x039F: "o",  # greek capital letter omicron
    0x03A1: "p",  # greek capital letter rho
    0x03A4: "t",  # greek capital letter tau
    0x03A5: "y",  # greek capital letter upsilon
    0x03A7: "x",  # greek capital letter chi
    # Separators
    ord("_"): "-",
    ord("."): "-",
}
_TABLE: Final = str.maketrans(_LOOK_ALIKES)


def skeleton(identifier: str) -> str:
    """The form in which identifiers that look alike are equal."""
    text = unicodedata.normalize("NFKC", identifier).translate(_TABLE).casefold()
    # Case folding can make new look-alikes (a capital I folds to i): map once more.
    return text.translate(_TABLE)


def confusable_with(identifier: str, existing: Iterable[str]) -> str | None:
    """The first of ``existing`` that ``identifier`` could be taken for (itself excluded:
    an exact repeat is a duplicate, not a look-alike), or None."""
    mine = skeleton(identifier)
    for other in existing:
        if other != identifier and skeleton(other) == mine:
            return other
    return None

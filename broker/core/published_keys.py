"""Keys published in this repository, refused outside demo mode wherever they are copied.

The demo's private keys are committed (``agreements/demo-keys/`` for signing agreements,
``demo/client_keys/`` for partner systems, ``demo/idp_keys/`` for the demo identity providers), so
anyone can sign with them. The broker recognises them by content, by their RFC 7638 thumbprints
listed here, never by path: outside ``--demo`` such a key is refused when registered, imported or
used. ``tests/core/test_published_keys.py`` fails when a committed key is missing from the list.
"""

from __future__ import annotations

from collections.abc import Iterable

#: RFC 7638 thumbprints of every key committed with the demo.
PUBLISHED_KEY_THUMBPRINTS: frozenset[str] = frozenset(
    {
        # agreements/demo-keys/ (agreement and register signing, one per demo party)
        "k_KN5MN3KfGTlZ3N90me1SYzzwgIrxkLlJY0eAQd8SQ",  # R9Z
        "rIy3DwkjNlr0cqVjvsDswZkJs11nIXIfcqjG5-4vBGM",  # Y99901
        "9qrVwOzBmt9woDchry2QtORIO_zMZ5IGyEsVw5ixTTc",  # Y99902
        "BLV9xnmYwcK9otWugfT3wQRQySpyKd87QbRURWH6RzQ",  # calderbridge-city-council
        "RpxdyBijtfPlmviua6XS7OTH3FqzPA7RS6rd4HD-BNg",  # northgate-housing
        "bU6zL35lqJgbS21Lbfz0zwF74IQbHWrvDZvqk4bh1bY",  # west-calder-police
        # demo/client_keys/ (partner systems' client assertion keys)
        "1xHvxNJqgmzG8cudwKUYus_iUNREFvtgR9aCMS0fTsg",  # broker-oversight
        "uSgyu7DHemD27I4sT--Bmk0Nqz30YIk3bTQh8fyzs2s",  # ccc-adult-social-care
        "iZ5jZcFBYMFFvJQ5R75qeZy9uaQFjDYH19u-sRqw4EI",  # ccc-childrens-services
        "3T51WEdv5JMIK_sza5Bs47BWq175xgHftIdFFsn7XZo",  # ccc-citizen-portal
        "ClPj1QSlR7MlBcwD7DSG5rLCFhGzy43zAUf3s9Cc3xc",  # ccc-governance
        "C9nx17IiRNBEreCLFsW3-MmP-PoZyYSHGq3g-MbCJhs",  # ccc-housing-options
        "wxARHTzPMANFBsNLvOqXQJmQ1tnkMmk8bk0rKZ-Z6FM",  # ccc-revenues-benefits
        "VEwE4X5ilfy0OHGkZalyD_25riC1O6JmFrRaFE0tVeI",  # ccc-school-admissions
        "L9-vvn_clhukkTOVC5GBRi3emlJN3tXrSEC4Vb9Y5a8",  # opa-sidecar
        "fFZHFq1_X64r0MWvcmIRfUgCQKTTofs880rmdZpqf7Y",  # r9z-discharge
        "ip36kQUF0GDnb35OQAhcVJPqaBS62JnGk9LcQaHg9lg",  # r9z-ed-safeguarding
        "9Mbezi4yu6eKU395xi6ToxGLwZlVEegcN8MkYZ6kitA",  # r9z-governance
        "75Y_1FPTQJ2c77CrGuvM6MmLPmdwprkaPlzE1EjgloA",  # wcp-mash
        "rbbZ3YpIzQFAH9F9bXryG2CjRgG02iBpF5ylGDLhqdk",  # y99901-gp-system
        # demo/idp_keys/ (the demo identity providers' signing keys)
        "X06pjC2XrOwOzlrgi54eSZNWHY8wKjEdjFyyH1w4Tg4",  # cis2-national (R9Z, Y99901, Y99902)
        "FORLsCZeYM4F4KZeHHYyL58jUtKYQPqrDcdWBbyN3X8",  # ccc-directory (the council)
        "g-sHD3G8y8KnQQnsYgpkl2-PWdjmV4R64NuSynS1_IA",  # wcp-directory (the police)
        "AL_Uy3DGczB5GKK6t2kQt_RVCHTH5nqXRL7dl9Ff3Mw",  # ngh-directory (the housing association)
        # demo/idp_keys/ (the council's synthetic citizen sign-in, NHS-login-like)
        "hEuz9bqc3VCI1fB6XIcOzM9PuBMGfx60SRSB3cozZUw",  # calderbridge-citizen
    }
)

#: What is said of a published key wherever it is refused.
PUBLISHED_KEY_REFUSAL = "is a published demo key, refused outside demo mode"


def is_published(thumbprint: str) -> bool:
    return thumbprint in PUBLISHED_KEY_THUMBPRINTS


def refused_thumbprints(*, demo: bool) -> frozenset[str]:
    """The thumbprints to refuse: every published key, or none in demo mode."""
    return frozenset() if demo else PUBLISHED_KEY_THUMBPRINTS


def published_among(thumbprints: Iterable[str], *, demo: bool) -> list[str]:
    """The published keys among ``thumbprints`` (sorted), none in demo mode."""
    if demo:
        return []
    return sorted({t for t in thumbprints if t in PUBLISHED_KEY_THUMBPRINTS})

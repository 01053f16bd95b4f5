"""The demo: fictional parties, their systems, agreements and synthetic source systems.

Everything here is loaded only by ``broker serve --demo``.
"""

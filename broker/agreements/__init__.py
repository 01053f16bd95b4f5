"""Signed Information Sharing Agreements and the Information Asset Register.

Pure core: ``model`` and ``register`` (documents), ``parsing`` (YAML in), ``validation``,
``signing`` (detached JWS), ``status`` (computed lifecycle). I/O shell: ``loader`` (a directory
in, verified agreements out), ``store`` (trust store, revocations, versions seen), ``authoring``
(validate, sign, revoke files). See docs/agreements.md.
"""

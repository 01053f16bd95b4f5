"""The person behind a request: ID tokens from the requesting party's own identity provider.

A partner system asserts ``requested_by`` (user id and role). Where its party registered an
identity provider, the system can also send ``requested_by.id_token``, an OIDC ID token of that
person; :meth:`broker.identity.service.IdentityProviders.verify_id_token` checks it and its
subject and role are used instead of the asserted ones.
"""

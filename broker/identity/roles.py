"""The agreement roles an ID token gives at the requesting party (pure: no I/O).

A registration says where a provider puts roles (``role_format``) and how its values map to the
roles of agreements (``role_map``):

- ``claim``: the role(s) are in one claim (a string or a list of strings, e.g. a council
  directory's groups), each mapped through ``role_map``; values not in the map are ignored, and
  a token none of whose values is mapped gives no role. With an empty map the values are the
  agreement roles as they are.
- ``cis2``: NHS CIS2 Authentication. ``nhsid_nrbac_roles`` lists every role the person holds,
  at any organisation (``person_roleid``, ``org_code``, ``role_code`` like
  ``S8000:G8000:R8001``); the person selected one at sign-in (``selected_roleid``). Only that
  entry counts, only when its ``org_code`` is the requesting party's ODS code, and its
  ``role_code`` maps through ``role_map`` (on the full code, else its last ``:`` part). A
  nurse holding roles at two trusts is thus never a nurse of the trust she did not select.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.identity.errors import IdTokenRejected

ROLE_FORMATS: tuple[str, ...] = ("claim", "cis2")
CIS2_ROLES_CLAIM = "nhsid_nrbac_roles"
CIS2_SELECTED_CLAIM = "selected_roleid"


@dataclass(frozen=True)
class RoleRules:
    """How one registration turns a token's claims into agreement roles."""

    role_format: str = "claim"
    role_claim: str = "role"
    """A claim name, or a dotted path into nested claims (``realm_access.roles``)."""
    role_map: Mapping[str, str] = field(default_factory=dict)
    org_code: str | None = None
    """The requesting party's ODS code (else its id): where a CIS2 role must have been granted."""

    @property
    def states_selected_role(self) -> bool:
        """True when the provider says which one role the person acts in."""
        return self.role_format == "cis2"


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _refuse(detail: str) -> IdTokenRejected:
    return IdTokenRejected("role", detail)


def _claim_values(value: Any, role_claim: str) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(r, str) and r for r in value):
        return list(dict.fromkeys(value))
    raise _refuse(f"the token has no role in its {role_claim} claim")


def _from_claim(claims: Mapping[str, Any], rules: RoleRules) -> tuple[str, ...]:
    values = _claim_values(claim_at(claims, rules.role_claim), rules.role_claim)
    if not rules.role_map:
        return tuple(values)
    mapped = [rules.role_map[v] for v in values if v in rules.role_map]
    if not mapped:
        raise _refuse(
            f"none of the values of the token's {rules.role_claim} claim is mapped to a role "
            "by the party's registration of this provider"
        )
    return tuple(dict.fromkeys(mapped))


def _short(value: object) -> str:
    return repr(value)[:80]


def _from_cis2(claims: Mapping[str, Any], rules: RoleRules) -> tuple[str, ...]:
    selected = claims.get(CIS2_SELECTED_CLAIM)
    if not isinstance(selected, str) or not selected:
        raise _refuse(
            f"the token has no {CIS2_SELECTED_CLAIM}: the user must select the role they act in"
        )
    entries = claims.get(CIS2_ROLES_CLAIM)
    if not isinstance(entries, list):
        raise _refuse(f"the token has no {CIS2_ROLES_CLAIM} list")
    chosen = [e for e in entries if isinstance(e, Mapping) and e.get("person_roleid") == selected]
    if len(chosen) != 1:
        raise _refuse(
            f"the selected role {_short(selected)} is not (once) among the token's "
            f"{CIS2_ROLES_CLAIM}"
        )
    entry = chosen[0]
    org_code = entry.get("org_code")
    if not isinstance(org_code, str) or org_code.upper() != (rules.org_code or "").upper():
        raise _refuse(
            f"the selected role {_short(selected)} was granted at organisation "
            f"{_short(org_code)}, not at {rules.org_code!r}, the requesting party"
        )
    code = entry.get("role_code")
    if not isinstance(code, str) or not code:
        raise _refuse(f"the selected role {_short(selected)} has no role_code")
    role = rules.role_map.get(code) or rules.role_map.get(code.rsplit(":", 1)[-1])
    if role is None:
        raise _refuse(
            f"the selected role's code {_short(code)} is not mapped to a role by the party's "
            "registration of this provider"
        )
    return (role,)


def roles_from_claims(claims: Mapping[str, Any], rules: RoleRules) -> tuple[str, ...]:
    """The agreement roles the (verified) claims give, at least one, or IdTokenRejected
    (reason ``role``) naming what is wrong."""
    if rules.role_format == "cis2":
        return _from_cis2(claims, rules)
    return _from_claim(claims, rules)


def choose_role(roles: tuple[str, ...], asserted_role: str | None) -> str:
    """The one role a request acts in: the asserted one, which must be among ``roles``, or the
    only one."""
    if asserted_role is not None:
        if asserted_role not in roles:
            raise _refuse(f"the asserted role {asserted_role!r} is not among the token's roles")
        return asserted_role
    if len(roles) > 1:
        raise _refuse("the token has several roles: assert which one applies")
    return roles[0]

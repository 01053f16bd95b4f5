"""The outbound address rule (pure) and the guard that resolves names and applies it."""

from __future__ import annotations

import pytest

from broker.core.errors import InvalidInput
from broker.core.outbound import address_class, parse_allow_list, parse_allow_rule, refusal
from broker.outbound import OutboundGuard, OutboundRefused

NOTHING = parse_allow_list([])


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
        ("10.0.0.5", "private"),
        ("172.16.4.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("127.0.0.1", "loopback"),
        ("127.9.9.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address judged, not bound
        ("::", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("192.0.2.1", "reserved"),
        ("240.0.0.1", "reserved"),
        ("8.8.8.8", None),
        ("2a00:1450:4009::200e", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_classes(address: str, expected: str | None) -> None:
    assert address_class(address) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a metadata address"),
        ("https://10.0.0.5:8443/", "10.0.0.5 is a private address"),
        ("http://127.0.0.1:22/", "127.0.0.1 is a loopback address"),
        ("http://localhost:6379/", "localhost resolves to 127.0.0.1, which is a loopback"),
        ("http://[::1]:5432/", "::1 is a loopback address"),
        ("https://[::ffff:10.0.0.5]/", "is a private address"),
        ("https://[fd00:ec2::254]/", "is a metadata address"),
        ("https://100.100.100.200/", "is a metadata address"),
    ],
)
def test_every_address_in_the_issue_is_refused_at_registration(url: str, expected: str) -> None:
    """The system resolver answers for localhost; the rest are literals."""
    with pytest.raises(InvalidInput) as e:
        OutboundGuard().check_url(url, "url")
    [problem] = e.value.problems
    assert problem.location == "url"
    assert expected in problem.message
    assert "BROKER_OUTBOUND_ALLOW" in problem.message


def test_a_name_resolving_to_loopback_is_refused() -> None:
    """``localhost.`` (a fully qualified name the system resolver answers) and a stub resolver
    that answers a public-looking name with an inside address (DNS rebinding)."""
    with pytest.raises(InvalidInput, match="url refused"):
        OutboundGuard().check_url("https://localhost./hook")
    rebound = OutboundGuard(resolve=lambda host, port: ["203.0.114.7", "127.0.0.1"])
    with pytest.raises(OutboundRefused, match=r"hooks\.example resolves to 127\.0\.0\.1"):
        rebound.addresses("hooks.example", 443)
    cloud = OutboundGuard(resolve=lambda host, port: ["::ffff:169.254.169.254"])
    with pytest.raises(OutboundRefused, match="metadata"):
        cloud.addresses("hooks.example", 443)


def test_public_addresses_and_unresolvable_names_pass_registration() -> None:
    public = OutboundGuard(resolve=lambda host, port: ["203.0.114.7"])
    assert public.check_url("https://hooks.example/x") == "https://hooks.example/x"
    assert public.addresses("hooks.example", 443) == ["203.0.114.7"]

    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("no such name")

    # Accepted now, checked again at every connection.
    assert OutboundGuard(resolve=nowhere).check_url("https://later.example/") is not None
    with pytest.raises(OutboundRefused, match="does not resolve"):
        OutboundGuard(resolve=nowhere).addresses("later.example", 443)


def test_the_allow_list_lets_through_what_it_names_only() -> None:
    allow = parse_allow_list(["127.0.0.1:8181", "10.20.0.0/16", "[::1]:5432", "opa.internal"])
    assert refusal("127.0.0.1", 8181, ["127.0.0.1"], allow) is None
    assert refusal("127.0.0.1", 22, ["127.0.0.1"], allow) == "127.0.0.1 is a loopback address"
    assert refusal("10.20.3.4", 443, ["10.20.3.4"], allow) is None
    assert refusal("10.0.0.5", 8443, ["10.0.0.5"], allow) is not None
    assert refusal("::1", 5432, ["::1"], allow) is None
    assert refusal("opa.internal", 8181, ["10.9.9.9"], allow) is None
    assert refusal("opa.internal.", 8181, ["10.9.9.9"], allow) is None
    assert refusal("other.internal", 8181, ["10.9.9.9"], allow) is not None
    # Every address of a name is checked, not only the first.
    assert refusal("mixed.example", 443, ["203.0.114.7", "10.0.0.5"], NOTHING) is not None


@pytest.mark.parametrize("entry", ["", "10.0.0.0/8:http", "[::1", "bad_name!", "1.2.3.4:0"])
def test_bad_allow_list_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_allow_rule(entry)


def test_the_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.settings import Settings

    monkeypatch.setenv("BROKER_OUTBOUND_ALLOW", "127.0.0.1:8181, opa:8181")
    assert Settings().outbound_allow == ["127.0.0.1:8181", "opa:8181"]
    monkeypatch.setenv("BROKER_OUTBOUND_ALLOW", "not a host")
    with pytest.raises(ValueError, match="not a host"):
        Settings()

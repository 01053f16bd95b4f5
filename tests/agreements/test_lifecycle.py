"""The issue's "done when": tampering, missing and foreign signatures, revocation, expiry,
versions."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from broker.agreements.authoring import revoke
from broker.agreements.loader import read_signatures, signature_path, write_signature
from broker.agreements.model import Agreement
from broker.agreements.parsing import parse_document
from broker.agreements.signing import sign_detached
from broker.agreements.store import MemoryAgreementStore
from tests.agreements.conftest import NOW, Loader, demo_key, status_of

SAFEGUARDING = "ISA-SAFEGUARDING-CHILDREN"
NEW_FIELD = "  - {name: name.previous, type: string, description: Previous names}\n"


def _isa(root: Path, agreement_id: str = SAFEGUARDING) -> Path:
    return root / "isa" / f"{agreement_id}.yaml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _resign(path: Path, party: str) -> None:
    doc = parse_document(path.read_text(), str(path))
    write_signature(path, party, sign_detached(doc.canonical_bytes(), demo_key(party)))


def _resign_all(path: Path) -> None:
    doc = parse_document(path.read_text(), str(path))
    assert isinstance(doc, Agreement)
    signature_path(path).unlink(missing_ok=True)
    for party in doc.parties:
        _resign(path, party.id)


def test_examples_are_all_active(load: Loader) -> None:
    result = load()
    assert {a.status.agreement_id: a.status.status for a in result.agreements} == {
        "ISA-HOSPITAL-DISCHARGE": "active",
        "ISA-PROOF-REUSE": "active",
        SAFEGUARDING: "active",
        "ISA-SCHOOL-ADMISSIONS": "active",
        "ISA-SPD-FRAUD": "active",
    }
    assert result.problems == ()
    assert result.register.open_datasets() == ("ccc.spending-over-500",)


def test_review_due_stays_active_and_is_flagged(load: Loader) -> None:
    by_id = {a.status.agreement_id: a.status for a in load().agreements}
    assert by_id["ISA-SPD-FRAUD"].status == "active"
    assert by_id["ISA-SPD-FRAUD"].review_due
    assert not by_id[SAFEGUARDING].review_due


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            "      - looked_after.status\n",
            "      - looked_after.legal_status\n",
            id="permitted-field",
        ),
        pytest.param(
            "      - allocated_team.*\n",
            "      - allocated_team.*\n      - address.*\n",
            id="field-added",
        ),
        pytest.param(
            "purposes: [child-protection-check]",
            "purposes: [child-protection-check, child-protection-check]",
            id="purpose-repeated",
        ),
        pytest.param(
            "or looked after, and who the",
            "or looked after, or anything, and who the",
            id="purpose-text",
        ),
        pytest.param("expires_on: 2029-03-31", "expires_on: 2031-03-31", id="date"),
        pytest.param(
            "recipient_retention_days: 365", "recipient_retention_days: 3650", id="retention"
        ),
        pytest.param("notify_provider: true", "notify_provider: false", id="notify-flag"),
    ],
)
def test_any_change_of_meaning_breaks_every_signature(
    root: Path, load: Loader, old: str, new: str
) -> None:
    _edit(_isa(root), old, new)
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "invalid"
    assert (
        "signature of 'calderbridge-city-council': the signature no longer matches the content"
        in reasons
    )


def test_reformatting_does_not_break_signatures(root: Path, load: Loader) -> None:
    path = _isa(root)
    text = path.read_text().replace("  - id: R9Z\n", "  - id: 'R9Z'\n")
    path.write_text(
        "# reformatted by hand\n\n" + text.replace("version: 1\n", "version:   1   # same\n")
    )
    assert status_of(load(), SAFEGUARDING)[0] == "active"


def test_swapping_a_party_is_refused(root: Path, load: Loader) -> None:
    path = _isa(root)
    text = path.read_text().replace("Y99902", "northgate-housing")
    path.write_text(text)
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "invalid"
    assert "signature filed for 'Y99902', which is not a party" in reasons


def test_dataset_entry_changed_without_owner_signature_counts_for_nothing(
    root: Path, load: Loader
) -> None:
    entry = root / "register" / "ccc.child-protection.yaml"
    _edit(
        entry,
        "  - {name: date_of_birth,",
        NEW_FIELD + "  - {name: date_of_birth,",
    )
    result = load()
    status, reasons = status_of(result, SAFEGUARDING)
    assert status == "invalid"
    assert "dataset entry 'ccc.child-protection' counts for nothing" in reasons
    assert "no longer matches the content" in reasons
    assert result.register.get("ccc.child-protection") is None


def test_field_added_under_a_wildcard_needs_new_agreement_signatures(
    root: Path, load: Loader
) -> None:
    entry = root / "register" / "ccc.child-protection.yaml"
    _edit(
        entry,
        "  - {name: date_of_birth,",
        NEW_FIELD + "  - {name: date_of_birth,",
    )
    _resign(entry, "calderbridge-city-council")  # the owner signs the grown entry...
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "invalid"  # ...but the agreement was signed over the old one
    assert (
        "dataset entry 'ccc.child-protection''s digest differs from the one the agreement "
        "was signed over" in reasons
    )


def test_open_true_set_without_signature_opens_nothing(root: Path, load: Loader) -> None:
    entry = root / "register" / "ccc.electoral-register.yaml"
    _edit(entry, "source: ccc-electoral-register", "source: ccc-electoral-register\nopen: true")
    result = load()
    assert result.register.open_datasets() == ("ccc.spending-over-500",)
    assert status_of(result, "ISA-SPD-FRAUD")[0] == "invalid"


def test_open_true_signed_by_owner_still_invalidates_agreements_relying_on_it(
    root: Path, load: Loader
) -> None:
    entry = root / "register" / "ccc.electoral-register.yaml"
    _edit(entry, "source: ccc-electoral-register", "source: ccc-electoral-register\nopen: true")
    _resign(entry, "calderbridge-city-council")
    result = load()
    assert "ccc.electoral-register" in result.register.open_datasets()
    status, reasons = status_of(result, "ISA-SPD-FRAUD")
    assert status == "invalid"
    assert "'ccc.electoral-register''s digest differs" in reasons


def test_one_signature_removed_gives_draft(root: Path, load: Loader) -> None:
    path = _isa(root)
    sig = signature_path(path)
    data = json.loads(sig.read_text())
    data["signatures"] = [s for s in data["signatures"] if s["party"] != "Y99902"]
    sig.write_text(json.dumps(data))
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "draft"
    assert "awaiting the signature of 'Y99902'" in reasons


def test_signature_by_another_partys_key_is_refused(root: Path, load: Loader) -> None:
    path = _isa(root)
    doc = parse_document(path.read_text(), str(path))
    forged = sign_detached(doc.canonical_bytes(), demo_key("R9Z"))
    write_signature(path, "Y99902", forged)
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "invalid"
    assert "belongs to 'R9Z', not to 'Y99902'" in reasons


def test_unknown_key_is_refused(root: Path, load: Loader) -> None:
    path = _isa(root)
    store = MemoryAgreementStore()  # an empty trust store
    status, reasons = status_of(load(store=store), SAFEGUARDING)
    assert status == "invalid"
    assert "is not in the trust store" in reasons
    assert read_signatures(path)  # signatures are there; they just count for nothing


def test_demo_keys_count_for_nothing_outside_demo_mode(load: Loader) -> None:
    status, reasons = status_of(load(demo=False), SAFEGUARDING)
    assert status == "invalid"
    assert "published demo key, refused outside demo mode" in reasons


def test_past_expiry_gives_expired(load: Loader) -> None:
    later = dt.datetime(2029, 4, 1, 9, 0, tzinfo=dt.UTC)
    assert status_of(load(now=later), SAFEGUARDING)[0] == "expired"
    assert status_of(load(now=later - dt.timedelta(days=1)), SAFEGUARDING)[0] == "active"


def test_before_effect_gives_pending(load: Loader) -> None:
    earlier = dt.datetime(2026, 3, 31, 22, 59, tzinfo=dt.UTC)  # 23:59 BST, still 31 March
    status, reasons = status_of(load(now=earlier), SAFEGUARDING)
    assert status == "pending"
    assert "takes effect on 2026-04-01" in reasons


def test_signed_revocation_revokes_and_deleting_the_file_does_not_restore(
    root: Path, load: Loader
) -> None:
    path = revoke(
        root,
        SAFEGUARDING,
        "west-calder-police",
        demo_key("west-calder-police"),
        "Breach of retention terms under investigation",
        now=NOW,
        demo=True,
    )
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "revoked"
    assert "revoked by 'west-calder-police'" in reasons
    assert "Breach of retention terms" in reasons
    path.unlink()
    signature_path(path).unlink()
    assert status_of(load(), SAFEGUARDING)[0] == "revoked"


def test_unsigned_or_foreign_revocation_counts_for_nothing(root: Path, load: Loader) -> None:
    path = revoke(
        root,
        SAFEGUARDING,
        "west-calder-police",
        demo_key("west-calder-police"),
        "test",
        now=NOW,
        demo=True,
    )
    forged = sign_detached(
        parse_document(path.read_text(), str(path)).canonical_bytes(), demo_key("R9Z")
    )
    write_signature(path, "west-calder-police", forged)
    result = load()
    assert status_of(result, SAFEGUARDING)[0] == "active"
    assert any("revocation counts for nothing" in p.reason for p in result.problems)


def test_revocation_by_a_non_party_is_refused(root: Path) -> None:
    from broker.agreements.errors import NotASignatoryError

    with pytest.raises(NotASignatoryError, match="not a party"):
        revoke(
            root,
            SAFEGUARDING,
            "northgate-housing",
            demo_key("northgate-housing"),
            "x",
            now=NOW,
            demo=True,
        )


def test_an_older_version_put_back_never_comes_back(
    root: Path, load: Loader, tmp_path: Path
) -> None:
    path = _isa(root)
    v1_text, v1_sigs = path.read_text(), signature_path(path).read_text()
    _edit(path, "version: 1", "version: 2")
    _edit(path, "recipient_retention_days: 365", "recipient_retention_days: 180")
    _resign_all(path)
    assert status_of(load(), SAFEGUARDING)[0] == "active"
    path.write_text(v1_text)  # put back the wider, older version with its valid signatures
    signature_path(path).write_text(v1_sigs)
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "invalid"
    assert "superseded: version 2 has already been seen" in reasons


def test_same_version_with_other_content_is_refused(root: Path, load: Loader) -> None:
    assert status_of(load(), SAFEGUARDING)[0] == "active"
    path = _isa(root)
    _edit(path, "recipient_retention_days: 365", "recipient_retention_days: 730")
    _resign_all(path)  # every party re-signs, but nobody bumped the version
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "invalid"
    assert "version 1 was already seen with other content" in reasons


def test_revocation_does_not_touch_a_later_version(root: Path, load: Loader) -> None:
    revoke(root, SAFEGUARDING, "R9Z", demo_key("R9Z"), "superseded by v2", now=NOW, demo=True)
    path = _isa(root)
    _edit(path, "version: 1", "version: 2")
    _resign_all(path)
    assert status_of(load(), SAFEGUARDING)[0] == "active"


def test_verified_agreement_expands_fields_for_the_policy_compiler(load: Loader) -> None:
    [item] = [a for a in load().agreements if a.status.agreement_id == SAFEGUARDING]
    assert item.agreement is not None
    flow = item.agreement.flows[0]
    assert item.permitted_fields(flow) == (
        "name.given",
        "name.family",
        "date_of_birth",
        "child_protection_plan.status",
        "child_protection_plan.category",
        "child_protection_plan.start_date",
        "child_protection_plan.end_date",
        "looked_after.status",
        "allocated_team.name",
        "allocated_team.phone",
        "allocated_team.email",
    )
    assert item.break_glass_fields(flow) == ("looked_after.legal_status", "social_worker.name")
    assert flow.notify_provider
    assert flow.subject_access_hold_days == 365


def test_verify_names_what_changed_since_the_version_was_signed(root: Path, load: Loader) -> None:
    assert status_of(load(), SAFEGUARDING)[0] == "active"  # seen (and recorded) once, intact
    _edit(_isa(root), "      - looked_after.status\n", "      - looked_after.legal_status\n")
    _edit(_isa(root), "expires_on: 2029-03-31", "expires_on: 2031-03-31")
    status, reasons = status_of(load(), SAFEGUARDING)
    assert status == "invalid"
    assert "changed since version 1 was signed" in reasons
    assert "flows[0].permitted_fields[3]: 'looked_after.status' -> 'looked_after.legal_status'" in (
        reasons
    )
    assert "validity.expires_on: '2029-03-31' -> '2031-03-31'" in reasons


def test_a_later_version_signed_in_advance_replaces_the_old_one_on_its_own_date(
    root: Path, load: Loader
) -> None:
    path = _isa(root)
    v2 = root / "isa" / "ISA-SAFEGUARDING-CHILDREN-v2.yaml"
    v2.write_text(
        path.read_text()
        .replace("version: 1", "version: 2")
        .replace("effective_from: 2026-04-01", "effective_from: 2027-01-01")
    )
    _resign_all(v2)
    result = load()
    by_version = {
        a.status.version: a.status
        for a in result.agreements
        if a.status.agreement_id == SAFEGUARDING
    }
    assert by_version[2].status == "pending"
    assert by_version[1].status == "active"
    assert "version 2 is signed and replaces this one on 2027-01-01" in by_version[1].reasons
    later = dt.datetime(2027, 1, 1, 0, 0, tzinfo=dt.UTC)
    by_version = {
        a.status.version: a.status
        for a in load(now=later).agreements
        if a.status.agreement_id == SAFEGUARDING
    }
    assert by_version[2].status == "active"
    assert by_version[1].status == "invalid"
    v2.unlink()  # deleting the new version does not bring the old one back either
    assert status_of(load(now=later), SAFEGUARDING)[0] == "invalid"

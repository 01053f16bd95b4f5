# Rego unit tests for data.sharing.decision. Run by `broker policy test` and by pytest
# (tests/policy/test_rego_unit.py). They use `with`, which regopy 1.5 cannot run, so the runner
# uses regorus; the Python decision table covers regopy.
package sharing_test

import rego.v1

import data.sharing

isa := {
	"agreements": {"ISA-T": {
		"id": "ISA-T",
		"version": 1,
		"digest": "sha256:00",
		"parties": {"council": true, "hospital": true},
		"datasets": {"ds.cp": true},
		"purposes": {"check": true},
		"effective_from": "2026-01-01",
		"expires_on": "2026-12-31",
		"valid_from_ns": 1767225600000000000,
		"valid_until_ns": 1798761600000000000,
		"revoked": false,
		"index": {"ds.cp": {"check": {"hospital": "f1"}}},
		"flows": {"f1": {
			"id": "f1",
			"dataset": "ds.cp",
			"provider": "council",
			"lawful_basis": ["UK GDPR 6(1)(e)"],
			"fields": {"name.family": true, "plan.status": true},
			"break_glass": {"allowed": true, "fields": {"worker.name": true}, "roles": {}},
			"case_reference_required": true,
			"consent_required": false,
			"roles": {"nurse": true},
			"verification_only": false,
			"office_hours": null,
			"retention_days": 10,
			"notify_provider": true,
			"subject_access_hold_days": 0,
			"identity": "verified",
		}},
	}},
	"datasets": {
		"ds.cp": {"id": "ds.cp", "owner": "council", "open": false, "fields": {
			"name.family": true, "plan.status": true, "worker.name": true, "address.line": true,
		}},
		"ds.open": {"id": "ds.open", "owner": "council", "open": true, "fields": {"a.b": true}},
	},
}

# 2026-06-01T10:00:00Z
base := {
	"client_id": "h1",
	"party": "hospital",
	"user": {"id": "u", "role": "nurse", "verified": true, "assurance": "verified"},
	"agreement_id": "ISA-T",
	"purpose": "check",
	"dataset": "ds.cp",
	"mode": "fetch",
	"claims": [],
	"fields": ["name.family", "address.line"],
	"case_reference": "C-1",
	"break_glass": false,
	"justification": null,
	"consent": "none",
	"now": "2026-06-01T10:00:00Z",
	"now_ns": 1780308000000000000,
	"clock": {"uk_date": "2026-06-01", "uk_weekday": 1, "uk_minute": 660, "uk_text": "Mon 11:00"},
}

decide(overrides) := d if {
	d := sharing.decision with input as object.union(base, overrides) with data.isa as isa
}

test_allow_releases_permitted_and_withholds_the_rest if {
	d := decide({})
	d.allow
	d.released_fields == ["name.family"]
	d.withheld_fields == [{"field": "address.line", "reason": "not permitted by agreement 'ISA-T'"}]
	d.obligations.notify_provider == true
	d.matched.provider == "council"
	d.obligations.retain_days == 10
	d.reasons == []
}

test_role_refused if {
	d := decide({"user": {"id": "u", "role": "porter"}})
	not d.allow
	d.reasons == ["role 'porter' may not make requests under flow 'f1' of agreement 'ISA-T'"]
}

asserted := {"user": {"verified": false, "assurance": "asserted"}}

test_a_verified_flow_refuses_an_asserted_user if {
	d := decide(asserted)
	not d.allow
	d.reasons == ["this flow needs a verified user"]
	not sharing.fast_decision with input as object.union(base, asserted) with data.isa as isa
}

test_a_verified_flow_refuses_a_system_without_a_person if {
	d := decide({"user": {"id": "h1", "role": "", "verified": false, "assurance": "system"}})
	not d.allow
	"this flow needs a verified user" in d.reasons
}

test_verified_needs_both_keys if {
	d := decide({"user": {"verified": true, "assurance": "asserted"}})
	not d.allow
	d.reasons == ["this flow needs a verified user"]
}

test_break_glass_needs_a_verified_user if {
	d := decide(object.union(asserted, {"break_glass": true, "justification": "urgent", "fields": ["worker.name"]}))
	not d.allow
	"break-glass needs a verified user" in d.reasons
	"this flow needs a verified user" in d.reasons
}

test_break_glass_needs_a_verified_user_on_an_asserted_flow if {
	d := sharing.decision with input as object.union(base, object.union(asserted, {"break_glass": true, "justification": "urgent", "fields": ["worker.name"]}))
		with data.isa as object.union(isa, {"agreements": {"ISA-T": {"flows": {"f1": {"identity": "asserted"}}}}})
	not d.allow
	d.reasons == ["break-glass needs a verified user"]
}

test_an_asserted_flow_takes_the_system_s_word if {
	d := sharing.decision with input as object.union(base, asserted)
		with data.isa as object.union(isa, {"agreements": {"ISA-T": {"flows": {"f1": {"identity": "asserted"}}}}})
	d.allow
}

test_a_system_flow_is_satisfied_by_a_system_with_no_person if {
	d := sharing.decision with input as object.union(base, {"user": {"id": "h1", "role": "", "verified": false, "assurance": "system"}})
		with data.isa as object.union(isa, {"agreements": {"ISA-T": {"flows": {"f1": {"identity": "system"}}}}})
	d.allow
	d.released_fields == ["name.family"]
}

test_a_flow_without_identity_needs_a_verified_user if {
	d := sharing.decision with input as object.union(base, asserted)
		with data.isa as json.remove(isa, ["agreements/ISA-T/flows/f1/identity"])
	not d.allow
	d.reasons == ["this flow needs a verified user"]
}

test_case_reference_required if {
	d := decide({"case_reference": null})
	not d.allow
	d.reasons == ["agreement 'ISA-T' requires a case reference for dataset 'ds.cp'"]
}

test_break_glass_opens_extra_fields if {
	d := decide({"break_glass": true, "justification": "urgent", "fields": ["worker.name"]})
	d.allow
	d.released_fields == ["worker.name"]
	d.obligations.review_break_glass
}

test_expired_agreement_denies if {
	d := decide({"now_ns": 1798761600000000000})
	not d.allow
	d.reasons == ["agreement 'ISA-T' expired on 2026-12-31"]
}

test_non_party_gets_the_generic_refusal if {
	d := decide({"party": "stranger"})
	not d.allow
	d.caller_reasons == ["no agreement permits this request"]
	count(d.reasons) == 1
}

test_open_data_needs_no_agreement if {
	d := decide({"dataset": "ds.open", "agreement_id": "", "fields": ["a.b"], "party": "anyone"})
	d.allow
	d.basis == "open-data"
	d.released_fields == ["a.b"]
}

test_no_reason_on_allow_and_some_reason_on_deny if {
	every o in [{}, {"party": "x"}, {"purpose": "y"}, {"fields": ["address.line"]}] {
		d := decide(o)
		d.allow == (count(d.reasons) == 0)
	}
}

test_fast_path_gives_what_the_general_path_gives if {
	inputs := [
		base,
		object.union(base, {"fields": ["name.family", "worker.name", "nope"]}),
		object.remove(base, ["fields"]),
	]
	every i in inputs {
		fast := sharing.fast_decision with input as i with data.isa as isa
		full := sharing.full_decision with input as i with data.isa as isa
		fast == full
	}
}

test_fast_path_steps_aside_when_it_cannot_allow if {
	inputs := [
		object.union(base, {"fields": ["address.line"]}),
		object.union(base, {"case_reference": null}),
		object.union(base, {"fields": ["name.*"]}),
		object.union(base, {"break_glass": true, "justification": "urgent"}),
	]
	every i in inputs {
		not sharing.fast_decision with input as i with data.isa as isa
	}
}

# The embedded engine asks for compact_decision: the fast verdict alone, or the full decision.
test_compact_decision_is_the_fast_match_or_the_full_decision if {
	fast := sharing.compact_decision with input as base with data.isa as isa
	fast == {"fast": sharing.fast_match} with input as base with data.isa as isa
	refused := object.union(base, {"fields": ["address.line"]})
	full := sharing.compact_decision with input as refused with data.isa as isa
	full == {"full": sharing.full_decision} with input as refused with data.isa as isa
}

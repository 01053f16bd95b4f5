# The broker's sharing policy: one entry point, data.sharing.decision.
#
# Generic rules; the agreements are data (data.isa, built by broker/policy/compiled.py). Every lookup
# goes through the index agreement -> dataset -> purpose -> recipient party, so the cost of a decision
# does not grow with the number of agreements. Fails closed: any reason denies, and a request that
# matches no flow has at least one reason.
#
# The input is built by broker/policy/input.py. UK local time (Europe/London, summer time included) is
# computed by the broker from input.now into input.clock, so that every engine (rego-cpp, regorus, OPA)
# sees the same local time whatever time zone database it ships.
#
# Written to run unchanged on OPA 1.x, regorus and rego-cpp (regopy): comprehensions use one iteration
# variable. data.sharing.decision is the entry point; the embedded engine asks for
# data.sharing.compact_decision, the same decision with the parts that are copies of the matched
# flow's data left for it to fill in (see the end of this file). Much of the shape below is for
# rego-cpp's costs, which docs/policy.md ("Performance") lists with the measurements.
package sharing

import rego.v1

default agreement_id := ""

agreement_id := input.agreement_id

default mode := "fetch"

mode := input.mode

default role := ""

role := input.user.role

default party := ""

party := input.party

# How the user is known (broker/policy/input.py): "verified", "asserted" or "system" (no person).
# Anything else, or nothing, counts as no verified user.
default user_verified := false

user_verified if {
	input.user.verified == true
	input.user.assurance == "verified"
}

default assurance := ""

assurance := input.user.assurance

# Written for rego-cpp's costs (measured, see docs/policy.md), without changing any answer:
# - it does not remember that a rule is undefined: every reference to an undefined rule (or `not`
#   of one) evaluates it again, while a defined value is looked up once. So the helpers the reason
#   rules test again and again have defaults (false for a missing thing), and every rule that reads
#   the agreement, the dataset or the flow first tests has_agreement, has_dataset or has_flow.
#   `not x` holds alike for an undefined x and a false one, and each guard only repeats what the
#   reference after it needs.
# - testing an object for truth (a bare `flow` as a statement) or comparing it (`x != null`) costs
#   tens of microseconds, as it walks the whole object; is_object(x) and is_null(x) do not.
default break_glass_requested := false

break_glass_requested if input.break_glass == true

dataset := data.isa.datasets[input.dataset]

default has_dataset := false

has_dataset if is_object(dataset)

default open_data := false

open_data if dataset.open == true

agreement := data.isa.agreements[agreement_id]

default has_agreement := false

has_agreement if is_object(agreement)

flow_id := agreement.index[input.dataset][input.purpose][party]

flow := agreement.flows[flow_id]

default has_flow := false

has_flow if is_object(flow)

default caller_is_party := false

caller_is_party if agreement.parties[party]

# ---------------------------------------------------------------- reasons that refuse the request

# Agreement-level reasons.
reason contains msg if {
	not open_data
	agreement_id == ""
	msg := "no agreement was named and the dataset is not open data"
}

reason contains msg if {
	not open_data
	agreement_id != ""
	not has_agreement
	msg := sprintf("agreement '%s' is not in force (unknown, unsigned or invalid)", [agreement_id])
}

reason contains msg if {
	has_agreement
	not open_data
	agreement.revoked == true
	msg := sprintf("agreement '%s' has been revoked", [agreement_id])
}

reason contains msg if {
	has_agreement
	not open_data
	input.now_ns < agreement.valid_from_ns
	msg := sprintf("agreement '%s' takes effect on %s", [agreement_id, agreement.effective_from])
}

reason contains msg if {
	has_agreement
	not open_data
	agreement.valid_until_ns != null
	input.now_ns >= agreement.valid_until_ns
	msg := sprintf("agreement '%s' expired on %s", [agreement_id, agreement.expires_on])
}

reason contains msg if {
	not has_dataset
	msg := sprintf("dataset '%s' is not in the information asset register", [input.dataset])
}

reason contains msg if {
	has_dataset
	has_agreement
	not open_data
	not agreement.datasets[input.dataset]
	msg := sprintf("dataset '%s' is not covered by agreement '%s'", [input.dataset, agreement_id])
}

reason contains msg if {
	has_agreement
	not open_data
	not agreement.purposes[input.purpose]
	msg := sprintf("purpose '%s' is not covered by agreement '%s'", [input.purpose, agreement_id])
}

# Whether the agreement has flows for this dataset and purpose. A rule, not `not is_object(...)`
# of the reference itself: OPA treats that `not` of an undefined reference as undefined (found by
# the differential test against OPA, tests/policy/test_opa_differential.py); rego-cpp as true.
default purpose_of_dataset := false

purpose_of_dataset if is_object(agreement.index[input.dataset][input.purpose])

reason contains msg if {
	has_agreement
	not open_data
	agreement.datasets[input.dataset]
	agreement.purposes[input.purpose]
	not purpose_of_dataset
	msg := sprintf(
		"purpose '%s' is not a purpose of dataset '%s' under agreement '%s'",
		[input.purpose, input.dataset, agreement_id],
	)
}

reason contains msg if {
	has_agreement
	not open_data
	purpose_of_dataset
	not flow_id
	msg := sprintf(
		"party '%s' is not a recipient of dataset '%s' for purpose '%s' under agreement '%s'",
		[party, input.dataset, input.purpose, agreement_id],
	)
}

# Flow-level reasons: conditions of the flow the request matched, tested only when a flow matched
# (every one of them reads the flow; the guard spares rego-cpp their bodies on other requests).
reason contains msg if {
	has_flow
	some msg in flow_reason
}

# A system asking for itself under a `system` flow has no role: the flow's roles are for people.
default system_request := false

system_request if {
	flow_identity == "system"
	assurance == "system"
}

flow_reason contains msg if {
	not open_data
	count(flow.roles) > 0
	not flow.roles[role]
	assurance != "system" # a system with no person has no role: the identity reason says so
	msg := sprintf("role '%s' may not make requests under flow '%s' of agreement '%s'", [role, flow_id, agreement_id])
}

flow_reason contains msg if {
	not open_data
	flow.case_reference_required == true
	not has_case_reference
	msg := sprintf("agreement '%s' requires a case reference for dataset '%s'", [agreement_id, input.dataset])
}

default has_case_reference := false

has_case_reference if {
	is_string(input.case_reference)
	trim_space(input.case_reference) != ""
}

default consent_status := "none"

consent_status := input.consent

flow_reason contains msg if {
	not open_data
	flow.consent_required == true
	consent_status == "withdrawn"
	msg := sprintf("agreement '%s' requires consent and the subject has withdrawn it", [agreement_id])
}

flow_reason contains msg if {
	not open_data
	flow.consent_required == true
	consent_status == "not_covered"
	doc_types := input.consent_document_types
	# concat, not sprintf: rego-cpp's sprintf quotes a string that concat built.
	msg := concat("", [
		"agreement '", agreement_id, "' requires consent and the subject's consent covers document types ",
		concat(", ", doc_types.covered), " only; this request is for ", concat(", ", doc_types.requested),
	])
}

flow_reason contains msg if {
	not open_data
	flow.consent_required == true
	consent_status != "given"
	consent_status != "withdrawn"
	consent_status != "not_covered"
	msg := sprintf("agreement '%s' requires recorded consent and none is on record", [agreement_id])
}

flow_reason contains msg if {
	not open_data
	break_glass_requested
	flow.break_glass.allowed != true
	msg := sprintf("break-glass is not allowed under flow '%s' of agreement '%s'", [flow_id, agreement_id])
}

flow_reason contains msg if {
	not open_data
	break_glass_requested
	flow.break_glass.allowed == true
	count(flow.break_glass.roles) > 0
	not flow.break_glass.roles[role]
	msg := sprintf("role '%s' may not use break-glass under agreement '%s'", [role, agreement_id])
}

flow_reason contains msg if {
	not open_data
	break_glass_requested
	not has_justification
	msg := "break-glass needs a justification"
}

reason contains msg if {
	break_glass_requested
	not user_verified
	msg := "break-glass needs a verified user"
}

# What the flow needs of the person behind the request (its `identity`): "verified", a verified
# user; "asserted", a user named by the system at least; "system", anyone, a system asking for
# itself included. A flow without the key needs a verified user (fails closed).
default flow_identity := "verified"

flow_identity := flow.identity if is_string(flow.identity)

default identity_ok := false

identity_ok if user_verified

identity_ok if {
	flow_identity == "asserted"
	assurance == "asserted"
}

identity_ok if {
	flow_identity == "system"
	assurance in {"asserted", "system"}
}

flow_reason contains msg if {
	not open_data
	not identity_ok
	flow_identity == "verified"
	msg := "this flow needs a verified user"
}

flow_reason contains msg if {
	not open_data
	not identity_ok
	flow_identity != "verified"
	msg := sprintf("flow '%s' of agreement '%s' needs a user named by the requesting system", [flow_id, agreement_id])
}

default has_justification := false

has_justification if {
	is_string(input.justification)
	trim_space(input.justification) != ""
}

flow_reason contains msg if {
	not open_data
	oh := flow.office_hours
	not is_null(oh)
	not within_office_hours(oh)
	msg := sprintf(
		"agreement '%s' allows requests for dataset '%s' only in office hours (%s); it is %s in the UK",
		[agreement_id, input.dataset, oh.text, input.clock.uk_text],
	)
}

within_office_hours(oh) if {
	input.clock.uk_weekday in oh.weekdays
	input.clock.uk_minute >= oh.start_minute
	input.clock.uk_minute < oh.end_minute
}

reason contains msg if {
	not mode in {"fetch", "verify"}
	msg := sprintf("mode '%s' is not known", [mode])
}

flow_reason contains msg if {
	not open_data
	mode == "fetch"
	flow.verification_only == true
	msg := sprintf(
		"flow '%s' of agreement '%s' is verification-only: it answers yes or no and releases no values",
		[flow_id, agreement_id],
	)
}

reason contains msg if {
	mode == "verify"
	open_data
	msg := sprintf("dataset '%s' is open data: fetch it instead of verifying claims", [input.dataset])
}

flow_reason contains msg if {
	not open_data
	mode == "verify"
	flow.verification_only != true
	msg := sprintf("flow '%s' of agreement '%s' does not answer verification questions", [flow_id, agreement_id])
}

flow_reason contains msg if {
	mode == "verify"
	flow.verification_only == true
	count(claims) == 0
	msg := "a verification request needs at least one claim"
}

flow_reason contains msg if {
	mode == "verify"
	flow.verification_only == true
	some c in claims
	not permitted[c]
	msg := sprintf("claim '%s' cannot be verified under agreement '%s'", [c, agreement_id])
}

reason contains msg if {
	mode == "fetch"
	open_data
	count(released) == 0
	msg := sprintf("none of the requested fields is in the catalogue of dataset '%s'", [input.dataset])
}

flow_reason contains msg if {
	mode == "fetch"
	not open_data
	count(released) == 0
	msg := sprintf("none of the requested fields is permitted by agreement '%s'", [agreement_id])
}

# ---------------------------------------------------------------- fields

# The fields this request may see, as a set (an object of name -> true): the flow's permitted
# fields, plus the break-glass fields when break-glass is asked for (any break-glass problem
# refuses the request anyway); on open data, the whole catalogue; else none. Computed once and
# looked up per field (rego-cpp would evaluate a function's every definition for every field).
permitted := object.union(flow.fields, flow.break_glass.fields) if {
	has_flow
	not open_data
	break_glass_requested
	flow.break_glass.allowed == true
} else := flow.fields if {
	has_flow
	not open_data
} else := dataset.fields if {
	open_data
} else := {}

default fields_named := false

fields_named if input.fields

default any_wildcard := false

any_wildcard if {
	some n in input.fields
	endswith(n, ".*")
}

# Requested names, with a trailing ".*" expanded against the catalogue.
requested contains f if {
	fields_named
	some f in input.fields
	not endswith(f, ".*")
}

# any_wildcard first: without it rego-cpp walks the catalogue even when no name is a wildcard
# (about 300 microseconds).
requested contains f if {
	any_wildcard
	some pattern in input.fields
	endswith(pattern, ".*")
	prefix := trim_suffix(pattern, "*")
	some f
	dataset.fields[f]
	startswith(f, prefix)
}

# No fields named: every field the request may see.
requested contains f if {
	has_flow
	not fields_named
	not open_data
	some f
	flow.fields[f]
}

requested contains f if {
	has_flow
	not fields_named
	not open_data
	break_glass_requested
	flow.break_glass.allowed == true
	some f
	flow.break_glass.fields[f]
}

requested contains f if {
	not fields_named
	open_data
	some f
	dataset.fields[f]
}

claims contains c if {
	some c in input.claims
}

released contains f if {
	mode == "fetch"
	some f in requested
	permitted[f]
}

withheld_reason(f) := msg if {
	not dataset.fields[f]
	msg := sprintf("not in the catalogue of dataset '%s'", [input.dataset])
} else := msg if {
	not break_glass_requested
	flow.break_glass.allowed == true
	flow.break_glass.fields[f]
	msg := "opened only by break-glass"
} else := msg if {
	not permitted[f]
	msg := sprintf("not permitted by agreement '%s'", [agreement_id])
} else := "the request was refused"

# ---------------------------------------------------------------- the decision

# The allow path is checked without building any message (rego-cpp pays for every rule it evaluates);
# the reasons above are built only when this fails. The Rego unit tests and the decision table check
# that the two agree: no reason on any allow, at least one on any deny.
valid_until_ok if agreement.valid_until_ns == null

valid_until_ok if input.now_ns < agreement.valid_until_ns

role_ok if count(flow.roles) == 0

role_ok if flow.roles[role]

role_ok if system_request

case_ok if flow.case_reference_required == false

case_ok if has_case_reference

consent_ok if flow.consent_required == false

consent_ok if consent_status == "given"

break_glass_ok if not break_glass_requested

break_glass_ok if {
	flow.break_glass.allowed == true
	break_glass_role_ok
	has_justification
	user_verified
}

break_glass_role_ok if count(flow.break_glass.roles) == 0

break_glass_role_ok if flow.break_glass.roles[role]

office_ok if is_null(flow.office_hours)

office_ok if within_office_hours(flow.office_hours)

mode_ok if {
	mode == "fetch"
	flow.verification_only == false
	count(released) > 0
}

mode_ok if {
	mode == "verify"
	flow.verification_only == true
	count(claims) > 0
	every c in claims {
		permitted[c]
	}
}

default agreement_allows := false

agreement_allows if {
	has_flow
	not open_data
	has_dataset
	agreement.revoked == false
	input.now_ns >= agreement.valid_from_ns
	valid_until_ok
	identity_ok
	role_ok
	case_ok
	consent_ok
	break_glass_ok
	office_ok
	mode_ok
}

default open_data_allows := false

open_data_allows if {
	open_data
	mode == "fetch"
	count(released) > 0
}

default allow := false

allow if agreement_allows

allow if open_data_allows

reasons := [] if {
	allow
} else := r if {
	r := sort(reason)
	count(r) > 0
} else := ["the request does not satisfy the agreement"]

default caller_reasons := ["no agreement permits this request"]

caller_reasons := reasons if caller_is_party

caller_reasons := reasons if {
	not caller_is_party
	open_data
}

# Obligations are the flow's own values (notify flag, days); the broker turns them into the party
# to notify (matched.provider) and dates counted from input.now (broker/policy/engine.py), which
# keeps date arithmetic out of every engine.
obligation_notify := flow.notify_provider if allow

default obligation_notify := false

obligation_retain_days := flow.retention_days if allow

default obligation_retain_days := null

obligation_hold_days := flow.subject_access_hold_days if allow

default obligation_hold_days := 0

default review_break_glass := false

review_break_glass if {
	allow
	break_glass_requested
}

default matched := null

matched := {
	"agreement_id": agreement_id,
	"agreement_version": agreement.version,
	"agreement_digest": agreement.digest,
	"flow_id": flow_id,
	"provider": flow.provider,
	"lawful_basis": flow.lawful_basis,
} if {
	has_flow
	not open_data
}

default basis := null

basis := "open-data" if open_data_allows

basis := "agreement" if agreement_allows

released_fields := sort(released) if allow

default released_fields := []

withheld_fields := [{"field": f, "reason": withheld_reason(f)} | some f in sort(requested); not released[f]] if {
	allow
} else := [{"field": f, "reason": withheld_reason(f)} | some f in sort(requested)]

verified_claims := sort(claims) if {
	allow
	mode == "verify"
}

default verified_claims := []

# The general decision: every path, every reason.
full_decision := {
	"allow": allow,
	"mode": mode,
	"basis": basis,
	"released_fields": released_fields,
	"withheld_fields": withheld_fields,
	"verified_claims": verified_claims,
	"obligations": {
		"notify_provider": obligation_notify,
		"retain_days": obligation_retain_days,
		"review_break_glass": review_break_glass,
		"subject_access_hold_days": obligation_hold_days,
	},
	"reasons": reasons,
	"caller_reasons": caller_reasons,
	"matched": matched,
}

# ---------------------------------------------------------------- the common case, fast

# rego-cpp pays for every statement and every rule body it evaluates, and for every value it
# returns, so the common request (a fetch under an agreement, fields named without wildcards or not
# named at all, no break-glass, every condition met) is decided in one rule body, fast_match.
# It must give exactly what full_decision gives: the decision table runs every case through both
# (tests/policy/test_fast_path.py) and a Hypothesis property compares them on random requests.
# Anything else falls through to full_decision. The fast path may be stricter than the general one
# (a request it does not answer is decided by full_decision), never looser.
decision := d if {
	d := fast_decision
} else := full_decision

# What the embedded engine asks for: the fast path's verdict alone, or the general decision. The
# fast verdict leaves out what is a plain copy of the matched flow's data or a constant (matched,
# obligations, the empty reasons); broker/policy/embedded.py fills those in exactly as
# fast_decision below does, which saves rego-cpp building and returning them (about a quarter of
# the cost of an allow). tests/policy/test_fast_path.py checks the two give the same decision.
compact_decision := {"fast": m} if {
	m := fast_match
} else := {"full": full_decision}

fast_decision := {
	"allow": true,
	"mode": "fetch",
	"basis": "agreement",
	"released_fields": m.released_fields,
	"withheld_fields": m.withheld_fields,
	"verified_claims": [],
	"obligations": {
		"notify_provider": f.notify_provider,
		"retain_days": f.retention_days,
		"review_break_glass": false,
		"subject_access_hold_days": f.subject_access_hold_days,
	},
	"reasons": [],
	"caller_reasons": [],
	"matched": {
		"agreement_id": input.agreement_id,
		"agreement_version": a.version,
		"agreement_digest": a.digest,
		"flow_id": m.flow_id,
		"provider": f.provider,
		"lawful_basis": f.lawful_basis,
	},
} if {
	m := fast_match
	a := data.isa.agreements[input.agreement_id]
	f := a.flows[m.flow_id]
}

# Each condition is one statement or one call of a function whose definitions are an else chain
# (rego-cpp evaluates every definition of a function, but stops an else chain at the first that
# holds). Values are bound to local variables (a, f, ds) once: every `.` costs rego-cpp a string key.
fast_match := {"flow_id": fid, "released_fields": released, "withheld_fields": withheld} if {
	input.mode == "fetch"
	input.break_glass == false
	a := data.isa.agreements[input.agreement_id]
	fid := a.index[input.dataset][input.purpose][input.party]
	f := a.flows[fid]
	ds := data.isa.datasets[input.dataset]
	ds.open == false
	a.revoked == false
	input.now_ns >= a.valid_from_ns
	fast_before_expiry(a.valid_until_ns)
	f.verification_only == false
	fast_identity_ok(f.identity)
	fast_role_ok(f.roles)
	fast_case_ok(f.case_reference_required)
	fast_consent_ok(f.consent_required)
	fast_office_ok(f.office_hours)
	names := fast_requested(f)
	released := sort([n | some n in names; f.fields[n]])
	count(released) > 0
	withheld := [{"field": n, "reason": fast_withheld_reason(n, f, ds)} | some n in names; not f.fields[n]]
}

# Each of these ends in an unconditional `else := false`: regopy 1.5 aborts on an else chain whose
# every body fails. A false value fails the statement that calls it, so the fast path falls through.
fast_before_expiry(until) := true if {
	until == null
} else := true if {
	input.now_ns < until
} else := false

# Stricter than identity_ok where it may be (a system with no person goes to full_decision).
fast_identity_ok(level) := true if {
	input.user.verified == true
	input.user.assurance == "verified"
} else := true if {
	level == "asserted"
	input.user.assurance == "asserted"
} else := true if {
	level == "system"
	input.user.assurance == "asserted"
} else := false

fast_role_ok(roles) := true if {
	count(roles) == 0
} else := true if {
	roles[input.user.role]
} else := false

fast_case_ok(required) := true if {
	required == false
} else := true if {
	has_case_reference
} else := false

fast_consent_ok(required) := true if {
	required == false
} else := true if {
	input.consent == "given"
} else := false

fast_office_ok(hours) := true if {
	is_null(hours)
} else := true if {
	within_office_hours(hours)
} else := false

# Named fields, sorted, when none is a wildcard; all permitted fields when none is named; else an
# empty list, which leaves nothing released and so sends the request to full_decision.
fast_requested(f) := sort(object.keys(f.fields)) if {
	not fields_named
} else := sort(input.fields) if {
	not any_wildcard
} else := []

fast_withheld_reason(n, f, ds) := msg if {
	not ds.fields[n]
	msg := sprintf("not in the catalogue of dataset '%s'", [input.dataset])
} else := "opened only by break-glass" if {
	f.break_glass.allowed == true
	f.break_glass.fields[n]
} else := sprintf("not permitted by agreement '%s'", [input.agreement_id])

"""Citizens' consents to share, modelled on HL7 FHIR R4 Consent (see :mod:`.model`)."""

"""Code and identifier systems MedLedger reads and writes in FHIR resources."""
from __future__ import annotations

#: A party's Ethereum address as a FHIR Identifier (Consent actors, Claim patient/provider/insurer).
ETHEREUM_ADDRESS_SYSTEM = "https://medledger.example/fhir/sid/ethereum-address"
MRN_SYSTEM = "https://hospital.medledger.example/fhir/sid/mrn"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED_SYSTEM = "http://snomed.info/sct"
LOINC_SYSTEM = "http://loinc.org"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
UCUM_SYSTEM = "http://unitsofmeasure.org"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"

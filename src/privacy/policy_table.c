/* policy_table.c - the built-in HIM policy, as data.
 *
 * Resource types are gathered into groups; the default rules say which role
 * may do what to which group (or type), in the same words as a site file's
 * "allow" lines (policy.c compiles both the same way).  Anything not allowed
 * here is denied.  The reasoning behind each role is in
 * docs/internals/privacy.md; change the two together.
 *
 * Two things are not rules and cannot be granted by any table or file:
 * nobody creates, updates, patches or deletes AuditEvent through the API
 * (the server writes it), and BATCH/CAPABILITIES are always allowed at the
 * request level (each entry of a Bundle is decided on its own). */
#include <stddef.h>

#include "base/base.h"
#include "privacy/policy_int.h"
#include "base/banned.h"

const struct policy_group policy_groups[] = {
	{ "clinical",
	  "AdverseEvent,AllergyIntolerance,BodyStructure,CarePlan,CareTeam,Communication,"
	  "CommunicationRequest,Condition,DetectedIssue,DeviceRequest,DeviceUseStatement,"
	  "DiagnosticReport,Encounter,EpisodeOfCare,FamilyMemberHistory,Flag,Goal,"
	  "GuidanceResponse,ImagingStudy,Immunization,ImmunizationEvaluation,"
	  "ImmunizationRecommendation,Media,MeasureReport,MedicationAdministration,"
	  "MedicationDispense,MedicationRequest,MedicationStatement,MolecularSequence,"
	  "NutritionOrder,Observation,Procedure,QuestionnaireResponse,RequestGroup,"
	  "ResearchSubject,RiskAssessment,ServiceRequest,Specimen,SupplyDelivery,SupplyRequest,"
	  "VisionPrescription",
	  "the clinical record: problems, results, orders, medications, encounters" },
	{ "notes",
	  "Binary,ClinicalImpression,Composition,DocumentManifest,DocumentReference",
	  "clinical documents and their content (notes, reports, scanned records)" },
	{ "demographics",
	  "Account,Coverage,Group,Linkage,Patient,Person,RelatedPerson",
	  "who the patient is: identity, contacts, insurance on file, MPI links" },
	{ "financial",
	  "Account,ChargeItem,ChargeItemDefinition,Claim,ClaimResponse,Contract,Coverage,"
	  "CoverageEligibilityRequest,CoverageEligibilityResponse,EnrollmentRequest,"
	  "EnrollmentResponse,ExplanationOfBenefit,InsurancePlan,Invoice,PaymentNotice,"
	  "PaymentReconciliation",
	  "the revenue cycle: charges, claims, remittances, payments" },
	{ "scheduling",
	  "Appointment,AppointmentResponse,Schedule,Slot",
	  "appointments and the calendars they are booked on" },
	{ "workflow",
	  "Basic,List,Task",
	  "HIM work items: deficiencies, physician queries, ROI requests, abstracts" },
	{ "consent",
	  "Consent",
	  "the patient's consents, authorizations and restrictions" },
	{ "audit",
	  "AuditEvent,Provenance",
	  "who did what (AuditEvent is written by the server only)" },
	{ "admin",
	  "Device,DeviceMetric,Endpoint,HealthcareService,Location,Organization,"
	  "OrganizationAffiliation,Practitioner,PractitionerRole,Subscription",
	  "the organisation: staff, places, services, endpoints" },
	{ "knowledge",
	  "ActivityDefinition,CatalogEntry,DeviceDefinition,EffectEvidenceSynthesis,"
	  "EventDefinition,Evidence,EvidenceVariable,Library,Measure,Medication,"
	  "MedicationKnowledge,MedicinalProduct,MedicinalProductAuthorization,"
	  "MedicinalProductContraindication,MedicinalProductIndication,"
	  "MedicinalProductIngredient,MedicinalProductInteraction,MedicinalProductManufactured,"
	  "MedicinalProductPackaged,MedicinalProductPharmaceutical,"
	  "MedicinalProductUndesirableEffect,ObservationDefinition,PlanDefinition,Questionnaire,"
	  "ResearchDefinition,ResearchElementDefinition,ResearchStudy,RiskEvidenceSynthesis,"
	  "SpecimenDefinition,Substance,SubstanceNucleicAcid,SubstancePolymer,SubstanceProtein,"
	  "SubstanceReferenceInformation,SubstanceSourceMaterial,SubstanceSpecification",
	  "reference content without patient data: formulary, order sets, forms, measures" },
	{ "conformance",
	  "CapabilityStatement,CodeSystem,CompartmentDefinition,ConceptMap,ExampleScenario,"
	  "GraphDefinition,ImplementationGuide,MessageDefinition,NamingSystem,"
	  "OperationDefinition,SearchParameter,StructureDefinition,StructureMap,"
	  "TerminologyCapabilities,TestReport,TestScript,ValueSet",
	  "how this server works: profiles, search parameters, terminology" },
	{ POLICY_OTHER, "",
	  "every resource type no other group names (Bundle, MessageHeader, ...)" },
};
const size_t policy_n_groups = ARRAY_SIZE(policy_groups);

/* "view" = read,vread,search,history; "write" = create,update,patch;
 * "all" = view, write, delete and operation.  "system" is the system level
 * (whole-system search and history, system $export): only search, history
 * and operation apply there. */
const struct policy_rule policy_default_rules[] = {
	/* everyone: look-ups that hold no patient data */
	{ "*", "view", "admin,knowledge,conformance" },

	/* front desk: registers patients, insurance, visits; never notes */
	{ "registration_clerk", "view,write", "demographics,scheduling,consent" },
	{ "registration_clerk", "view,write", "Encounter,CoverageEligibilityRequest" },
	{ "registration_clerk", "view", "CoverageEligibilityResponse" },

	/* analyses and completes charts: reads the record, maintains documents */
	{ "him_technician", "view", "clinical,demographics,scheduling,consent" },
	{ "him_technician", "view,write", "notes,workflow" },
	{ "him_technician", "operation", "Patient" },

	/* reads the documentation, codes it, builds the claim, queries physicians */
	{ "coder", "view", "clinical,notes,demographics,financial" },
	{ "coder", "update,patch", "Condition,Procedure" },
	{ "coder", "view,write", "Claim,ChargeItem,workflow" },
	{ "coder", "operation", "Patient" },

	/* cancer/trauma registry: abstracts cases from the record */
	{ "registrar", "view", "clinical,notes,demographics" },
	{ "registrar", "view,write", "workflow" },
	{ "registrar", "operation", "Patient" },

	/* release of information: reads what is disclosed, writes nothing clinical */
	{ "roi_specialist", "view", "clinical,notes,demographics,consent" },
	{ "roi_specialist", "view,write", "workflow" },
	{ "roi_specialist", "operation", "Patient" },

	/* patient accounts: the revenue cycle, the visit, never notes */
	{ "billing", "view,write", "financial" },
	{ "billing", "view", "demographics,Encounter" },

	/* runs the HIM team: reads broadly, maintains documents and work */
	{ "him_supervisor", "view",
	  "clinical,notes,demographics,financial,scheduling,workflow,consent,other" },
	{ "him_supervisor", "write", "notes,workflow" },
	{ "him_supervisor", "operation", "Patient" },

	/* custodian of the legal health record: reads all of it but the audit
	 * trail, amends documents and demographics, exports */
	{ "him_director", "view",
	  "clinical,notes,demographics,financial,scheduling,workflow,consent,other,system" },
	{ "him_director", "write", "notes,workflow,demographics,consent" },
	{ "him_director", "delete", "workflow" },
	{ "him_director", "operation", "Patient,Group,system" },

	/* care: reads and writes the clinical record */
	{ "clinician", "view,write", "clinical,notes,scheduling,workflow,consent,other" },
	{ "clinician", "view", "demographics" },
	{ "clinician", "operation", "Patient" },

	/* investigates: reads everything, the audit trail included; writes only
	 * restrictions (Consent) and its own work items */
	{ "privacy_officer", "view", "*,system" },
	{ "privacy_officer", "write", "consent,workflow" },
	{ "privacy_officer", "operation", "Patient" },

	/* runs the system: the organisation and conformance resources, and
	 * (outside FHIR) users and clients; not a reader of patient data */
	{ "admin", "all", "admin,knowledge,conformance" },

	/* an interface feed (HL7 v2: src/hl7v2/feed.c), a registered client:
	 * writes what hospital systems send - registration, visits, results,
	 * orders, notes, charges - and the staff and payors they name; reads
	 * only to find what it updates */
	{ "interface", "view,write", "clinical,notes,demographics,financial,scheduling,admin" },
};
const size_t policy_n_default_rules = ARRAY_SIZE(policy_default_rules);

/* Clearance: the highest confidentiality level (v3-Confidentiality) and the
 * sensitivity categories a role may see without breaking the glass. */
const struct policy_clearance policy_default_clearances[] = {
	{ "registration_clerk,him_technician,registrar,billing,admin,interface", "N", "none" },
	{ "coder", "N", "sud,bh,hiv,std,sex,sdv,gdis" },
	{ "roi_specialist", "R", "sud,bh,hiv,std,sex,sdv,gdis" },
	{ "him_supervisor", "R", "bh,hiv,std,sex,sdv,gdis" },
	{ "him_director", "R", "sud,bh,hiv,std,sex,sdv,gdis" },
	{ "clinician", "R", "bh,hiv,std,sex,sdv,gdis" },
	{ "privacy_officer", "V", "all" },
};
const size_t policy_n_default_clearances = ARRAY_SIZE(policy_default_clearances);

/* Break-the-glass is for care in an emergency. */
const char policy_default_btg_roles[] = "clinician";

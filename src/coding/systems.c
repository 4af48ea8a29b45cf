/* systems.c - the code systems chartkeep loads, as one table, and the forms
 * their codes and versions take. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding/coding.h"
#include "base/banned.h"

const struct coding_system coding_systems[] = {
	{ "icd10cm", "http://hl7.org/fhir/sid/icd-10-cm", "ICD-10-CM", CK_CODES, CD_FISCAL,
	  "the CDC/CMS order file icd10cm_order_YYYY.txt (fixed width) or the TSV "
	  "code/billable/short_desc/long_desc/..." },
	{ "icd10pcs", "http://www.cms.gov/Medicare/Coding/ICD10", "ICD-10-PCS", CK_CODES, CD_FISCAL,
	  "the CMS order file icd10pcs_order_YYYY.txt (fixed width) or the TSV "
	  "order/code/billable/short_desc/long_desc" },
	{ "hcpcs", "urn:oid:2.16.840.1.113883.6.285", "HCPCS Level II", CK_CODES, CD_CALENDAR,
	  "the CMS alpha-numeric HCPCS file HCPCYYYY_CONTR_ANWEB.txt (320-byte records)" },
	{ "cpt", "http://www.ama-assn.org/go/cpt", "CPT", CK_CODES, CD_CALENDAR,
	  "a CSV the site supplies from its AMA licence: code,description[,short description]" },
	{ "pos", "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
	  "CMS Place of Service", CK_CODES, CD_OPEN, "the FHIR CodeSystem JSON of the CMS place of service codes" },
	{ "mce", NULL, "Medicare Code Editor edit lists", CK_EDITS, CD_MCE,
	  "the MCE simple code edits TSV (MCE_Version, ICD_Version, MCE_Section, MCE_Subsection, "
	  "MCE_Edit_Type, ICD_Code_Type, ICD_Code, ICD_Desc)" },
	{ "poa-exempt", NULL, "POA-exempt ICD-10-CM codes", CK_EDITS, CD_FISCAL,
	  "the CMS POA-exempt code list TSV (OrderYYYY, POAexemptCode, Description)" },
};
const size_t coding_n_systems = ARRAY_SIZE(coding_systems);

const struct coding_system *coding_system_by_name(const char *name)
{
	for (size_t i = 0; name && i < coding_n_systems; i++)
		if (strcmp(coding_systems[i].name, name) == 0)
			return &coding_systems[i];
	return NULL;
}

const struct coding_system *coding_system_by_uri(const char *uri)
{
	for (size_t i = 0; uri && i < coding_n_systems; i++)
		if (coding_systems[i].uri && strcmp(coding_systems[i].uri, uri) == 0)
			return &coding_systems[i];
	return NULL;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

int coding_version_dates(const struct coding_system *sys, const char *version, char from[11],
			 char to[11], struct err *e)
{
	size_t n = strlen(version);
	int y;

	if (n == 0 || n >= STORE_CODE_VERSION_MAX)
		return err_set(e, ERR_INVALID, "--version: 1 to %d characters", STORE_CODE_VERSION_MAX - 1);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)version[i]) && !strchr("._-", version[i]))
			return err_set(e, ERR_INVALID, "--version: letters, digits, '.', '_' and '-' only");
	switch (sys->dating) {
	case CD_OPEN:
		snprintf(from, 11, "0001-01-01");
		snprintf(to, 11, "9999-12-31");
		return 0;
	case CD_MCE:
		/* MCE v33 came with ICD-10 (FY2016); one version a fiscal year */
		if (!all_digits(version, n) || n > 3 || atol(version) < 33)
			return err_set(e, ERR_INVALID, "--version: an MCE version number (33 or later, e.g. 37)");
		y = (int)atol(version) + 1983;
		break;
	default:
		if (n != 4 || !all_digits(version, n) || atol(version) < 1990 || atol(version) > 2099)
			return err_set(e, ERR_INVALID, "--version: a %s year (YYYY), e.g. 2016",
				       sys->dating == CD_FISCAL ? "fiscal" : "calendar");
		y = (int)atol(version);
		break;
	}
	if (sys->dating == CD_CALENDAR) {
		snprintf(from, 11, "%04u-01-01", (unsigned)y % 10000u);
		snprintf(to, 11, "%04u-12-31", (unsigned)y % 10000u);
	} else {
		snprintf(from, 11, "%04u-10-01", (unsigned)(y - 1) % 10000u);
		snprintf(to, 11, "%04u-09-30", (unsigned)y % 10000u);
	}
	return 0;
}

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '\'')
			return false;
	return true;
}

int coding_code_norm(const struct coding_system *sys, const char *in, size_t n,
		     char out[STORE_CODE_MAX], struct err *e)
{
	size_t k = 0, dot = 0;
	bool cm = strcmp(sys->name, "icd10cm") == 0 || strcmp(sys->name, "poa-exempt") == 0;

	while (n && isspace((unsigned char)*in))
		in++, n--;
	while (n && isspace((unsigned char)in[n - 1]))
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch == '.' && cm && !dot && k == 3) {
			dot = i + 1;
			continue;
		}
		if (!isalnum(ch) || k + 1 >= STORE_CODE_MAX) {
			k = 0;
			break;
		}
		out[k++] = (char)toupper(ch);
	}
	out[k] = '\0';
	if (k == 0 || (dot && k == 3)) {
		if (n && n <= 20 && printable(in, n))
			err_set(e, ERR_INVALID, "'%.*s' is not a well-formed %s code", (int)n, in, sys->title);
		else
			err_set(e, ERR_INVALID, "not a well-formed %s code", sys->title);
		return -1;
	}
	return 0;
}

void coding_code_show(const struct coding_system *sys, const char *code, char out[STORE_CODE_MAX + 2])
{
	size_t n = strlen(code);

	if (n > 3 && (strcmp(sys->name, "icd10cm") == 0 || strcmp(sys->name, "poa-exempt") == 0))
		snprintf(out, STORE_CODE_MAX + 2, "%.3s.%s", code, code + 3);
	else
		snprintf(out, STORE_CODE_MAX + 2, "%s", code);
}

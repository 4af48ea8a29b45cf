/* main.c - chartkeep's entry point: one table of subcommands. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli/cli.h"
#include "base/banned.h"

#ifndef CHARTKEEP_VERSION
#define CHARTKEEP_VERSION "0.1.0"
#endif

static int cmd_version(const struct cli_cmd *cmd, int argc, char **argv);

static const struct cli_cmd commands[] = {
	{ "init", cmd_init, "create a new database",
	  "usage: chartkeep init --db PATH\n"
	  "Create a new, empty chartkeep database at PATH (schema and migrations).\n"
	  "Refuses to overwrite an existing file.\n" },
	{ "user", cmd_user, "add and list users",
	  "usage: chartkeep user add --db PATH --username NAME --role ROLE --password-stdin\n"
	  "       chartkeep user list --db PATH\n"
	  "Roles: registration_clerk him_technician coder registrar roi_specialist billing\n"
	  "       him_supervisor him_director clinician privacy_officer admin\n"
	  "The password is read from the first line of standard input; at least 12\n"
	  "characters and not a common password.\n" },
	{ "token", cmd_token, "issue and revoke bearer tokens",
	  "usage: chartkeep token issue --db PATH --username NAME [--ttl SECONDS] [--scope SCOPES]\n"
	  "       chartkeep token revoke --db PATH --token-stdin\n"
	  "issue prints a new bearer token on standard output (default lifetime 3600 s).\n"
	  "Only a hash of the token is stored.\n" },
	{ "client", cmd_client, "register and list OAuth system clients",
	  "usage: chartkeep client add --db PATH --client-id ID --role ROLE [--scopes SCOPES]\n"
	  "       chartkeep client list --db PATH\n"
	  "       chartkeep client disable --db PATH --client-id ID\n"
	  "       chartkeep client enable --db PATH --client-id ID\n"
	  "add prints the client's secret on standard output, once: only a hash is kept.\n"
	  "The client gets tokens from POST /auth/token with grant_type=client_credentials.\n"
	  "SCOPES (system/ scopes, space-separated, e.g. \"system/*.rs\") are the most it\n"
	  "may ask for; without --scopes it may ask for any system/ scope.\n" },
	{ "serve", cmd_serve, "serve the FHIR API over HTTP(S)",
	  "usage: chartkeep serve --db PATH [--listen ADDR:PORT] [--base-url URL]\n"
	  "                       [--tls-cert FILE --tls-key FILE]\n"
	  "                       [--max-body BYTES] [--max-depth N] [--threads N]\n"
	  "                       [--timeout SECONDS] [--log-level error|warn|info|debug]\n"
	  "                       [--max-connections N] [--per-ip-connections N]\n"
	  "                       [--max-header-bytes BYTES]\n"
	  "                       [--export-dir DIR] [--lockout-attempts N]\n"
	  "                       [--lockout-minutes M] [--token-rate N]\n"
	  "                       [--audit-key FILE] [--policy FILE] [--no-match]\n"
	  "                       [--mpi-auto-link on|off]\n"
	  "Serve until SIGINT or SIGTERM; in-flight requests finish before it exits.\n"
	  "Default listen address 127.0.0.1:8080; port 0 picks a free port (logged).\n"
	  "--tls-cert and --tls-key (PEM, the key unencrypted) serve HTTPS, TLS 1.2+.\n"
	  "--timeout (default 60 s) closes idle connections and those whose request\n"
	  "headers take longer than that to arrive. At most --max-connections (1000)\n"
	  "connections, --per-ip-connections (64; 0: no limit) from one address;\n"
	  "request line and headers beyond --max-header-bytes (32768) get 431.\n"
	  "N wrong passwords in a row (default 5; 0: never) lock a user for M minutes\n"
	  "(default 15). /auth/token and /auth/revoke take N requests a second per\n"
	  "address, bursts of 2N (default 10; 0: no limit).\n"
	  "Every Patient written is matched against the others in the background\n"
	  "(possible duplicates become review Tasks); --no-match turns that off.\n"
	  "A certain match is also linked (Patient.link seealso, never merged);\n"
	  "--mpi-auto-link off leaves it a review Task only.\n" },
	{ "import", cmd_import, "load FHIR Bundles and NDJSON files",
	  "usage: chartkeep import --db PATH [--no-match] [--mpi-auto-link on|off] FILE...\n"
	  "Each FILE is a FHIR Bundle (transaction, batch, collection, searchset), a single\n"
	  "resource, or NDJSON (one resource per line, as Bulk Data exports are).\n"
	  "NDJSON and collection resources keep their ids; a transaction Bundle is all or\n"
	  "nothing. Bad resources are reported as FILE:LINE or FILE: entry N with the reason\n"
	  "and the exit status is 1.\n"
	  "Every Patient loaded is matched against the others (possible duplicates become\n"
	  "review Tasks; certain ones linked unless --mpi-auto-link off); --no-match skips\n"
	  "that for a bulk migration: run mpi scan after.\n" },
	{ "export", cmd_export, "write current resources as NDJSON",
	  "usage: chartkeep export --db PATH [--type TYPE,...] > out.ndjson\n"
	  "Writes the current version of every resource (not deleted), one per line.\n" },
	{ "demo", cmd_demo, "generate synthetic HIM data and serve it",
	  "usage: chartkeep demo [--db PATH] [--patients N] [--seed S] [--listen ADDR:PORT]\n"
	  "                      [--no-serve]\n"
	  "       chartkeep demo --out-ndjson FILE [--patients N] [--seed S] [--patients-only]\n"
	  "       chartkeep demo --out-bundles DIR [--patients N] [--seed S] [--bundle-size N]\n"
	  "Generates realistic synthetic patients, encounters, diagnoses (ICD-10-CM),\n"
	  "procedures, observations, notes (some unsigned), coverage and claims,\n"
	  "deterministically from the seed. Default: demo.db, 200 patients, seed 1.\n"
	  "With --out-*, only writes files (for benchmarks and tests).\n" },
	{ "reindex", cmd_reindex, "rebuild the search indexes",
	  "usage: chartkeep reindex --db PATH [--type TYPE]\n"
	  "Extracts the search index rows of every current resource (or of one type)\n"
	  "again, with the search parameters the database has now: run it after adding\n"
	  "or changing a SearchParameter, so that resources written before it are found.\n"
	  "Searches keep working while it runs (each resource's rows are replaced in one\n"
	  "transaction); progress is shown on a terminal.\n" },
	{ "policy", cmd_policy, "show the access policy, check a site policy file",
	  "usage: chartkeep policy show [--policy FILE] [--json]\n"
	  "       chartkeep policy check FILE\n"
	  "show prints the effective policy (built-in defaults, plus FILE when given):\n"
	  "per role its clearance and what it may do to each group of resource types;\n"
	  "--json: per role, group and type the allowed actions, and each group's types.\n"
	  "check validates a site policy file (as 'serve --policy FILE' will load it):\n"
	  "exit 0 when it is valid, else 1 with FILE:LINE and what is wrong.\n" },
	{ "audit", cmd_audit, "the audit trail: signing key, verification",
	  "usage: chartkeep audit keygen --key FILE\n"
	  "       chartkeep audit verify --db PATH [--key FILE]\n"
	  "keygen writes a new Ed25519 key pair: FILE (secret, mode 0600) and FILE.pub.\n"
	  "serve signs a checkpoint of the audit chain with it every 1000 entries and at\n"
	  "exit (serve --audit-key FILE; default DB.audit-key, made on first start).\n"
	  "verify walks the whole chain and every checkpoint: exit 0 and OK, or exit 1 and\n"
	  "the first entry that was edited, deleted, inserted or reordered. With --key\n"
	  "(secret or .pub) the checkpoints' signatures are checked too.\n" },
	{ "codes", cmd_codes, "load code sets and edit tables, list and look up codes",
	  "usage: chartkeep codes load --db PATH --system SYSTEM --version V\n"
	  "                            [--effective-from DATE] [--effective-to DATE] FILE\n"
	  "       chartkeep codes list --db PATH [--system SYSTEM]\n"
	  "       chartkeep codes lookup --db PATH --system SYSTEM --code CODE [--date DATE]\n"
	  "SYSTEM: icd10cm (order file icd10cm_order_YYYY.txt or TSV), icd10pcs (order\n"
	  "file or TSV), hcpcs (CMS HCPCS Level II fixed-width file), pos (CMS place of\n"
	  "service CodeSystem JSON), cpt (a CSV code,description[,short] from the site's\n"
	  "own AMA licence: chartkeep ships no CPT), mce (Medicare Code Editor edit lists,\n"
	  "--version 37), poa-exempt (CMS POA-exempt list, --version YYYY).\n"
	  "V is the fiscal year (ICD-10, POA), calendar year (HCPCS, CPT) or MCE version;\n"
	  "it sets the dates of service the version covers (override with --effective-*).\n"
	  "A load is all or nothing: a malformed line is reported as FILE: line N and\n"
	  "nothing is stored. Loading the same file again changes nothing; another file\n"
	  "for the same version replaces it.\n" },
	{ "hl7", cmd_hl7, "HL7 v2: parse a message, send over MLLP, the error queue",
	  "usage: chartkeep hl7 parse FILE [--path PATH | --fhir]\n"
	  "       chartkeep hl7 send --to HOST:PORT FILE...\n"
	  "       chartkeep hl7 errors --db PATH [--json]\n"
	  "       chartkeep hl7 reprocess --db PATH ID\n"
	  "       chartkeep hl7 acks --db PATH [--all] [--json]\n"
	  "parse prints each message of FILE (- for standard input; batch files too) as\n"
	  "JSON: segments, fields by number, repetitions, components, subcomponents,\n"
	  "escapes resolved; with --path (PID-5[2].1, OBX(3)-5) only that value; with\n"
	  "--fhir the FHIR transaction Bundle the feed would make of it.\n"
	  "send sends every message of each FILE over MLLP and prints each ACK; exit 1\n"
	  "if any was not accepted (AA/CA).\n"
	  "errors lists the inbox messages that failed or were rejected, with the reason;\n"
	  "reprocess runs message ID through the mapping again (after a fix).\n"
	  "acks lists the application ACKs (enhanced mode) not yet delivered to their\n"
	  "sender, or that the sender refused; --all lists the delivered ones too.\n"
	  "serve --mllp ADDR:PORT receives messages (docs/hl7v2.md).\n" },
	{ "mpi", cmd_mpi, "master patient index: find duplicate patients, train the matcher",
	  "usage: chartkeep mpi scan --db PATH [--threads N]\n"
	  "       chartkeep mpi train --db PATH [--threads N]\n"
	  "scan compares every pair of current Patients that share a blocking key and\n"
	  "prints one CSV line per pair at or above the review threshold:\n"
	  "id_a,id_b,score,decision (id_a < id_b, score the match probability 0..1,\n"
	  "decision link or review). Pairs marked \"not a duplicate\" are left out.\n"
	  "train estimates the m/u probabilities of every comparison from the database's\n"
	  "own patients (EM) and stores them (Basic/mpi-model); until then defaults apply.\n"
	  "Progress goes to standard error on a terminal, and a summary line always\n"
	  "(patients, pairs compared, links, reviews). Default 2 threads.\n" },
	{ "x12", cmd_x12, "parse, validate (999/TA1) and encode X12 5010 files",
	  "usage: chartkeep x12 parse FILE\n"
	  "       chartkeep x12 validate FILE [--now CCYYMMDDHHMM] [--control N]\n"
	  "       chartkeep x12 encode FILE.json [--our-delimiters]\n"
	  "parse prints the interchanges as JSON: groups, transaction sets, the guide's\n"
	  "loops (2000B, 2300, ...), segments and elements with the guide's names.\n"
	  "validate prints the 999 acknowledgement (and a TA1 when the envelope is bad);\n"
	  "exit 0 when every transaction set is accepted, 1 when any is rejected or the\n"
	  "envelope is bad, 2 when FILE cannot be read or is not X12. --now fixes the\n"
	  "acknowledgement's date and time, --control its first control number.\n"
	  "encode writes JSON (as parse prints it) back as X12, with the sender's\n"
	  "delimiters or, with --our-delimiters, * ^ : ~ and a newline; segment counts\n"
	  "and trailer control numbers are recomputed. FILE may be - for standard input.\n"	  "Problems are reported on standard error with the interchange, transaction,\n"
	  "segment position, loop and element.\n" },
	{ "check", cmd_check, "check a database's integrity",
	  "usage: chartkeep check --db PATH\n"
	  "Runs the storage engine's integrity check; exit 0 when the database is sound.\n" },
	{ "version", cmd_version, "print the version", "usage: chartkeep version\n" },
};

static int cmd_version(const struct cli_cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	(void)argc;
	(void)argv;
	printf("chartkeep %s (FHIR %s)\n", CHARTKEEP_VERSION, "4.0.1");
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: chartkeep <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'chartkeep <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	const char *lvl = getenv("CHARTKEEP_LOG_LEVEL");

	if (sodium_init() < 0) {
		fprintf(stderr, "chartkeep: cannot initialise libsodium\n");
		return 1;
	}
	if (lvl && log_level_parse(lvl) >= 0)
		log_level = log_level_parse(lvl);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(NULL, 0, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(&commands[i], argc - 1, argv + 1);
	fprintf(stderr, "chartkeep: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}

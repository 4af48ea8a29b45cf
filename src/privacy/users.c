/* users.c - roles, usernames and passwords (argon2id via libsodium). */
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"
#include "privacy/privacy.h"
#include "base/banned.h"

const char *const privacy_roles[] = {
	"registration_clerk", "him_technician", "coder", "registrar", "roi_specialist",
	"billing", "him_supervisor", "him_director", "clinician", "privacy_officer", "admin",
	"interface",
	NULL,
};

/* The most common passwords of public breach lists that are long enough to
 * pass the length rule; a full list arrives with the security issue. */
static const char *const common_passwords[] = {
	"123456789012", "1234567890123", "12345678901234", "qwertyuiopas", "password1234",
	"password12345", "passwordpassword", "qwerty123456", "iloveyou1234", "111111111111",
	"000000000000", "123123123123", "abcdefghijkl", "letmein12345", "welcome12345",
	"administrator", "changeme1234", "trustno11234", "football1234", "baseball1234",
	"superman1234", "qwertyqwerty", "1q2w3e4r5t6y", "zaq12wsxcde3", "p@ssw0rd1234",
	"Password1234", "Password123!", "Welcome12345", "Passw0rd1234", "hospital1234",
	"healthcare12", "chartkeep123", NULL,
};

bool privacy_role_valid(const char *role)
{
	for (const char *const *r = privacy_roles; *r; r++)
		if (strcmp(*r, role) == 0)
			return true;
	return false;
}

bool privacy_username_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STORE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '@'))
			return false;
	}
	return true;
}

int privacy_password_check(const char *pw, struct err *e)
{
	size_t n = strlen(pw);

	if (n < PRIVACY_MIN_PASSWORD)
		return err_set(e, ERR_INVALID, "password too short: at least %d characters",
			       PRIVACY_MIN_PASSWORD);
	if (n > PRIVACY_MAX_PASSWORD)
		return err_set(e, ERR_INVALID, "password too long: at most %d characters",
			       PRIVACY_MAX_PASSWORD);
	for (const char *const *c = common_passwords; *c; c++)
		if (strcasecmp(*c, pw) == 0)
			return err_set(e, ERR_INVALID, "password is too common: choose another");
	return 0;
}

int privacy_password_hash(const char *pw, char out[STORE_HASH_MAX + 1], struct err *e)
{
	if (crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return err_set(e, ERR_NOMEM, "out of memory while hashing the password");
	return 0;
}

bool privacy_password_verify(const char *hash, const char *pw)
{
	return crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
}

int privacy_user_add(struct store *s, const char *username, const char *role,
		     const char *password, struct err *e)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	if (!privacy_username_valid(username))
		return err_set(e, ERR_INVALID, "invalid username: use 1-64 of a-z A-Z 0-9 . _ - @");
	if (!privacy_role_valid(role))
		return err_set(e, ERR_INVALID, "unknown role '%.40s'", role);
	if (privacy_password_check(password, e) < 0)
		return -1;
	snprintf(u.username, sizeof(u.username), "%s", username);
	snprintf(u.role, sizeof(u.role), "%s", role);
	u.active = true;
	if (privacy_password_hash(password, u.pw_hash, e) < 0)
		return -1;
	return store_user_add(s, &u, e);
}

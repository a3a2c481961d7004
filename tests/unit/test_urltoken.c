/* test_urltoken.c — polaimg's own signed-URL tokens.
 *
 * The known answers were computed independently with Python's hmac and
 * base64 modules over "polaimg-v1\n<purpose>\n<id>\n<variant>\n<expires>"
 * (base64url, padding stripped), so a change of the message format, the
 * encoding or the key handling fails here. The rest are properties: every
 * bound field is covered, purposes do not mix, expiry is inclusive, and the
 * upload token parser refuses everything but its one canonical form.
 */
#include "urltoken.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "tap.h"

#define ID  "7d444840-9dc0-11d1-b245-5ffdce74fad2"
#define ID2 "7d444840-9dc0-11d1-b245-5ffdce74fad3"
#define ISSUER  "0b6a33f2-4c1e-4a57-9d0e-2f9b8b1c5a10"
#define ISSUER2 "0b6a33f2-4c1e-4a57-9d0e-2f9b8b1c5a11"

static const unsigned char key[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN (sizeof(key) - 1)

static void
test_known(void)
{
	char sig[URLTOKEN_SIG_LEN + 1], tok[URLTOKEN_UPLOAD_MAX + 1];

	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1700000000, sig, sizeof(sig)), 0, "sign download");
	is_str(sig, "UgraMhBaCZBoub-EdDHdJcPeF888Xy0LCmQUbZeliUA",
	    "download signature known answer");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_UPLOAD, ID, "original",
	    1700000900, sig, sizeof(sig)), 0, "sign upload");
	is_str(sig, "KJpKZzitCqTwv15KmGIwB6lsupKFffqFWmYY-ADw72E",
	    "upload signature known answer");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, "x", "thumb", 0,
	    sig, sizeof(sig)), 0, "sign expires 0");
	is_str(sig, "FgBsEjNplUomeqNRKCkv77hoJNlk_fBVfs7F9Iz1eKE",
	    "'_' of base64url, expires 0");
	is_int(urltoken_upload_token(key, KEYLEN, ID, 1700000900, tok,
	    sizeof(tok)), 0, "upload token");
	is_str(tok, "1700000900.KJpKZzitCqTwv15KmGIwB6lsupKFffqFWmYY-ADw72E",
	    "upload token is <expires>.<upload sig over 'original'>");
}

static void
test_download(void)
{
	char sig[URLTOKEN_SIG_LEN + 1], bad[URLTOKEN_SIG_LEN + 2];
	const int64_t e = 1700000000;
	int alphabet = 1, okall;

	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display", e,
	    sig, sizeof(sig)), 0, "sign");
	is_int((int)strlen(sig), URLTOKEN_SIG_LEN, "43 characters");
	for (size_t i = 0; sig[i] != '\0'; i++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789-_", sig[i]) == NULL)
			alphabet = 0;
	ok(alphabet, "base64url alphabet, no padding");

	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e, sig, e - 100), URLTOKEN_VALID, "round trip");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID2, "display",
	    e, sig, e - 100), URLTOKEN_BAD, "other id refused");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "original",
	    e, sig, e - 100), URLTOKEN_BAD, "other variant refused");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e + 1, sig, e - 100), URLTOKEN_BAD, "later expiry refused");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e - 1, sig, e - 100), URLTOKEN_BAD, "earlier expiry refused");
	is_int(urltoken_verify(key, KEYLEN - 1, URLTOKEN_DOWNLOAD, ID,
	    "display", e, sig, e - 100), URLTOKEN_BAD, "other key refused");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_UPLOAD, ID, "display", e,
	    sig, e - 100), URLTOKEN_BAD, "download sig is no upload sig");

	/* Every single-character change of the signature is refused. */
	okall = 1;
	for (size_t i = 0; i < URLTOKEN_SIG_LEN; i++) {
		memcpy(bad, sig, sizeof(sig));
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		if (urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID,
		    "display", e, bad, e - 100) != URLTOKEN_BAD)
			okall = 0;
	}
	ok(okall, "every tampered signature character refused");

	/* Expiry: valid through the second named, expired after it. */
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e, sig, e), URLTOKEN_VALID, "now == expires is valid");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e, sig, e + 1), URLTOKEN_EXPIRED, "now == expires + 1 expired");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e, sig, INT64_MAX), URLTOKEN_EXPIRED, "far future expired");
	memcpy(bad, sig, sizeof(sig));
	bad[0] = bad[0] == 'A' ? 'B' : 'A';
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e, bad, e + 1), URLTOKEN_BAD,
	    "a bad signature is BAD, not EXPIRED, after expiry");

	/* Malformed signatures. */
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e, NULL, e), URLTOKEN_BAD, "NULL sig");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e, "", e), URLTOKEN_BAD, "empty sig");
	memcpy(bad, sig, sizeof(sig));
	bad[URLTOKEN_SIG_LEN - 1] = '\0';
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e, bad, e), URLTOKEN_BAD, "42-character prefix");
	memcpy(bad, sig, sizeof(sig));
	bad[URLTOKEN_SIG_LEN] = '=';
	bad[URLTOKEN_SIG_LEN + 1] = '\0';
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    e, bad, e), URLTOKEN_BAD, "padded signature");
	is_int(urltoken_verify(NULL, 0, URLTOKEN_DOWNLOAD, ID, "display", e,
	    sig, e), URLTOKEN_BAD, "no key: nothing verifies");
	is_int(urltoken_verify(key, KEYLEN, (enum urltoken_purpose)7, ID,
	    "display", e, sig, e), URLTOKEN_BAD, "unknown purpose");
}

static void
test_sign_invalid(void)
{
	char sig[URLTOKEN_SIG_LEN + 1];

	is_int(urltoken_sign(NULL, 4, URLTOKEN_DOWNLOAD, ID, "v", 1, sig,
	    sizeof(sig)), PI_ERR_INVALID, "NULL key");
	is_int(urltoken_sign(key, 0, URLTOKEN_DOWNLOAD, ID, "v", 1, sig,
	    sizeof(sig)), PI_ERR_INVALID, "empty key");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, NULL, "v", 1, sig,
	    sizeof(sig)), PI_ERR_INVALID, "NULL id");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, "", "v", 1, sig,
	    sizeof(sig)), PI_ERR_INVALID, "empty id");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, NULL, 1, sig,
	    sizeof(sig)), PI_ERR_INVALID, "NULL variant");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "v", -1, sig,
	    sizeof(sig)), PI_ERR_INVALID, "negative expires");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "v", 1, sig,
	    URLTOKEN_SIG_LEN), PI_ERR_INVALID, "43-byte buffer too small");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "v", 1, NULL,
	    64), PI_ERR_INVALID, "NULL out");
	/* "a\nb" + "c" and "a" + "b\nc" would be one message. */
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, "a\nb", "c", 1,
	    sig, sizeof(sig)), PI_ERR_INVALID, "newline in id refused");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, "a", "b\nc", 1,
	    sig, sizeof(sig)), PI_ERR_INVALID, "newline in variant refused");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, "a\nb", "c", 1,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0), URLTOKEN_BAD,
	    "newline in id never verifies");
}

static void
test_upload(void)
{
	char tok[URLTOKEN_UPLOAD_MAX + 1], bad[URLTOKEN_UPLOAD_MAX + 8];
	char dsig[URLTOKEN_SIG_LEN + 1], usig[URLTOKEN_SIG_LEN + 1];
	const int64_t e = 1700000900;
	const char *dot;
	int n;

	is_int(urltoken_upload_token(key, KEYLEN, ID, e, tok, sizeof(tok)), 0,
	    "upload token");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, tok, e - 900),
	    URLTOKEN_VALID, "upload round trip");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, tok, e), URLTOKEN_VALID,
	    "upload valid at expires");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, tok, e + 1),
	    URLTOKEN_EXPIRED, "upload expired one second later");
	is_int(urltoken_upload_verify(key, KEYLEN, ID2, tok, e),
	    URLTOKEN_BAD, "upload token of another image refused");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, tok + 1, e),
	    URLTOKEN_BAD, "expiry prefix cut refused");

	/* Moving the expiry later with the same signature. */
	dot = strchr(tok, '.');
	n = snprintf(bad, sizeof(bad), "%lld%s", (long long)e + 3600,
	    dot != NULL ? dot : "");
	ok(n > 0 && urltoken_upload_verify(key, KEYLEN, ID, bad, e) ==
	    URLTOKEN_BAD, "extended expiry refused");

	/* Purposes do not mix, in either direction. */
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "original", e,
	    dsig, sizeof(dsig)), 0, "download sig of the original");
	snprintf(bad, sizeof(bad), "%lld.%s", (long long)e, dsig);
	is_int(urltoken_upload_verify(key, KEYLEN, ID, bad, e - 1),
	    URLTOKEN_BAD, "download signature is no upload token");
	memcpy(usig, dot != NULL ? dot + 1 : "", sizeof(usig));
	usig[URLTOKEN_SIG_LEN] = '\0';
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "original",
	    e, usig, e - 1), URLTOKEN_BAD, "upload signature is no download sig");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_UPLOAD, ID, "original",
	    e, usig, e - 1), URLTOKEN_VALID, "it is the upload signature");

	/* Largest expiry: formatted, parsed, verified. */
	is_int(urltoken_upload_token_by(key, KEYLEN, ID, INT64_MAX, ISSUER, tok,
	    sizeof(tok)), 0, "INT64_MAX expiry token");
	is_int((int)strlen(tok), URLTOKEN_UPLOAD_MAX, "longest token length");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, tok, e), URLTOKEN_VALID,
	    "INT64_MAX expiry verifies");
	is_int(urltoken_upload_token_by(key, KEYLEN, ID, INT64_MAX, ISSUER, tok,
	    URLTOKEN_UPLOAD_MAX), PI_ERR_INVALID, "buffer one short refused");
	is_str(tok, "", "and left empty");
	is_int(urltoken_upload_token(key, KEYLEN, ID, 0, tok, sizeof(tok)), 0,
	    "expiry 0 token");
	ok(strncmp(tok, "0.", 2) == 0, "expiry 0 written as \"0\"");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, tok, 0), URLTOKEN_VALID,
	    "expiry 0 verifies at 0");
	is_int(urltoken_upload_token(key, KEYLEN, ID, -1, tok, sizeof(tok)), PI_ERR_INVALID,
	    "negative expiry refused");
}

static void
test_upload_malformed(void)
{
	char good[URLTOKEN_UPLOAD_MAX + 1], sig[URLTOKEN_SIG_LEN + 1];
	char buf[256];
	const int64_t e = 1700000900;
	static const char *const prefixes[] = {
		"", ".", "+", "-", " ", "0", "00", "01700000900",
		"+1700000900", "-1700000900", " 1700000900", "1700000900 ",
		"17000a0900", "0x65", "1e9", "1700000900.",
		"99999999999999999999", "9223372036854775808",
		"18446744073709551616", "1700000900\n",
	};
	const char *s;

	urltoken_upload_token(key, KEYLEN, ID, e, good, sizeof(good));
	s = strchr(good, '.');
	snprintf(sig, sizeof(sig), "%s", s != NULL ? s + 1 : "");

	is_int(urltoken_upload_verify(key, KEYLEN, ID, NULL, e), URLTOKEN_BAD,
	    "NULL token");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, "", e), URLTOKEN_BAD,
	    "empty token");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, "1700000900", e),
	    URLTOKEN_BAD, "no dot");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, sig, e), URLTOKEN_BAD,
	    "signature alone");
	for (size_t i = 0; i < PI_ARRAY_LEN(prefixes); i++) {
		char name[96];

		snprintf(buf, sizeof(buf), "%s.%s", prefixes[i], sig);
		snprintf(name, sizeof(name), "expiry \"%s\" refused",
		    prefixes[i]);
		for (char *p = name; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20)
				*p = '?';   /* one TAP line per test */
		is_int(urltoken_upload_verify(key, KEYLEN, ID, buf, e),
		    URLTOKEN_BAD, name);
	}
	/* 2^64 + e: wraps to e if the parser did not check for overflow. */
	snprintf(buf, sizeof(buf), "18446744075409552516.%s", sig);
	is_int(urltoken_upload_verify(key, KEYLEN, ID, buf, e), URLTOKEN_BAD,
	    "expiry 2^64 + e does not wrap to e");
	snprintf(buf, sizeof(buf), "%s=", good);
	is_int(urltoken_upload_verify(key, KEYLEN, ID, buf, e), URLTOKEN_BAD,
	    "trailing byte after the signature");
	snprintf(buf, sizeof(buf), "%s", good);
	buf[strlen(buf) - 1] = '\0';
	is_int(urltoken_upload_verify(key, KEYLEN, ID, buf, e), URLTOKEN_BAD,
	    "signature one short");
	snprintf(buf, sizeof(buf), "%s.x", good);
	is_int(urltoken_upload_verify(key, KEYLEN, ID, buf, e), URLTOKEN_BAD,
	    "second dot");
	is_int(urltoken_upload_verify(key, KEYLEN, ID, good, e), URLTOKEN_VALID,
	    "the good token still verifies");
}

/* Format v2: the issuer is bound into the MAC and carried in the token;
 * format v1 tokens (no issuer) still verify until they expire. */
static void
test_issuer(void)
{
	char sig[URLTOKEN_SIG_LEN + 1], sig1[URLTOKEN_SIG_LEN + 1];
	char tok[URLTOKEN_UPLOAD_MAX + 1], t2[2 * URLTOKEN_UPLOAD_MAX];
	char iss[URLTOKEN_ISSUER_LEN + 1];
	int64_t e = 1700000900;

	/* Known answers (Python hmac over the v2 message). */
	is_int(urltoken_sign_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1700000000, ISSUER, sig, sizeof(sig)), 0, "v2: sign download");
	is_str(sig, "Xl4UYy3A7j0kZwNaLuog0Xyy6DJnbnyERJtuNbwwghw",
	    "v2: download signature known answer");
	is_int(urltoken_upload_token_by(key, KEYLEN, ID, e, ISSUER, tok,
	    sizeof(tok)), 0, "v2: upload token");
	is_str(tok, "1700000900." ISSUER
	    ".V77PnWoftE73T8-hv4xSYGxOE1vbwUYr4rlQ6WltMSA",
	    "v2: upload token known answer");

	/* Download: the issuer must be the one signed; v1 and v2 never mix. */
	is_int(urltoken_verify_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1700000000, ISSUER, sig, 1700000000), URLTOKEN_VALID,
	    "v2: download verifies with its issuer");
	is_int(urltoken_verify_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1700000000, ISSUER2, sig, 1700000000), URLTOKEN_BAD,
	    "v2: another issuer refused");
	is_int(urltoken_verify(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1700000000, sig, 1700000000), URLTOKEN_BAD,
	    "v2: issuer removed (verified as v1) refused");
	is_int(urltoken_sign(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1700000000, sig1, sizeof(sig1)), 0, "v1: sign download");
	is_int(urltoken_verify_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1700000000, ISSUER, sig1, 1700000000), URLTOKEN_BAD,
	    "v1 signature with an issuer added refused");
	is_int(urltoken_verify_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1700000000, NULL, sig1, 1700000000), URLTOKEN_VALID,
	    "v1 (old format) download still verifies");
	is_int(urltoken_verify_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1700000000, NULL, sig1, 1700000001), URLTOKEN_EXPIRED,
	    "v1 (old format) download expires as before");
	/* Issuer shape: lower-case canonical UUID only. */
	is_int(urltoken_sign_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1, "0B6A33F2-4C1E-4A57-9D0E-2F9B8B1C5A10", sig, sizeof(sig)), PI_ERR_INVALID,
	    "v2: upper-case issuer refused");
	is_int(urltoken_sign_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1, ISSUER "0", sig, sizeof(sig)), PI_ERR_INVALID, "v2: long issuer refused");
	is_int(urltoken_sign_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1, "0b6a33f2-4c1e-4a57-9d0e-2f9b8b1c5a1", sig, sizeof(sig)), PI_ERR_INVALID,
	    "v2: short issuer refused");
	is_int(urltoken_sign_by(key, KEYLEN, URLTOKEN_DOWNLOAD, ID, "display",
	    1, "0b6a33f2-4c1e-4a57-9d0e\n2f9b8b1c5a10", sig, sizeof(sig)), PI_ERR_INVALID,
	    "v2: newline in issuer refused");

	/* Upload: the issuer comes back; v1 tokens have none. */
	memset(iss, 'x', sizeof(iss));
	is_int(urltoken_upload_verify_by(key, KEYLEN, ID, tok, e, iss),
	    URLTOKEN_VALID, "v2: upload token verifies");
	is_str(iss, ISSUER, "v2: and names its issuer");
	is_int(urltoken_upload_verify_by(key, KEYLEN, ID, tok, e + 1, iss),
	    URLTOKEN_EXPIRED, "v2: upload token expires");
	is_int(urltoken_upload_verify_by(key, KEYLEN, ID2, tok, e, iss),
	    URLTOKEN_BAD, "v2: upload token of another image refused");
	is_str(iss, "", "v2: a refused token names no issuer");
	snprintf(t2, sizeof(t2), "1700000900.%s.%s", ISSUER2,
	    tok + 11 + URLTOKEN_ISSUER_LEN + 1);
	is_int(urltoken_upload_verify_by(key, KEYLEN, ID, t2, e, iss),
	    URLTOKEN_BAD, "v2: issuer swapped refused");
	snprintf(t2, sizeof(t2), "1700000900.%s", tok + 11 + URLTOKEN_ISSUER_LEN + 1);
	is_int(urltoken_upload_verify_by(key, KEYLEN, ID, t2, e, iss),
	    URLTOKEN_BAD, "v2: issuer removed refused");
	snprintf(t2, sizeof(t2), "1700000900.%s.%s",
	    "0B6A33F2-4C1E-4A57-9D0E-2F9B8B1C5A10",
	    tok + 11 + URLTOKEN_ISSUER_LEN + 1);
	is_int(urltoken_upload_verify_by(key, KEYLEN, ID, t2, e, iss),
	    URLTOKEN_BAD, "v2: upper-case issuer refused");
	is_int(urltoken_upload_token(key, KEYLEN, ID, e, tok, sizeof(tok)), 0,
	    "v1: upload token");
	memset(iss, 'x', sizeof(iss));
	is_int(urltoken_upload_verify_by(key, KEYLEN, ID, tok, e, iss),
	    URLTOKEN_VALID, "v1 (old format) upload token still verifies");
	is_str(iss, "", "v1: no issuer");
	snprintf(t2, sizeof(t2), "1700000900.%s.%s", ISSUER, tok + 11);
	is_int(urltoken_upload_verify_by(key, KEYLEN, ID, t2, e, iss),
	    URLTOKEN_BAD, "v1 signature with an issuer inserted refused");
}

int
main(void)
{
	test_known();
	test_download();
	test_sign_invalid();
	test_upload();
	test_upload_malformed();
	test_issuer();
	return done_testing();
}

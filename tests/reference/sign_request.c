/* sign_request.c — prints what sigv4_sign_request() makes of one request,
 * so tests/reference/presign.test.mjs can compare polaimg's header signing
 * with the AWS SDK's signer. Built by that test from src/sigv4.c alone.
 *
 * usage: sign_request ENDPOINT BUCKET PATH_STYLE(0|1) REGION METHOD KEY
 *                     QUERY AMZDATE PAYLOAD_SHA256 [name:value ...]
 * with SIGV4_ACCESS_KEY_ID and SIGV4_SECRET_ACCESS_KEY in the environment.
 * ENDPOINT "" means AWS; KEY "" the bucket itself; QUERY "" none.
 * Prints the URL and then the four header lines, one a line; exit 1 if the
 * request cannot be signed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

int main(int argc, char **argv);

int
main(int argc, char **argv)
{
	struct sigv4_header extra[32];
	struct sigv4_cred cred;
	struct sigv4_target tgt;
	char *url = NULL, *hdr[4] = { NULL, NULL, NULL, NULL };
	char names[32][65];
	size_t nextra = 0;
	int64_t now;
	int rc = 1;

	if (argc < 10 || argc - 10 > 32) {
		fprintf(stderr, "usage: sign_request ENDPOINT BUCKET PATH_STYLE REGION "
		    "METHOD KEY QUERY AMZDATE PAYLOAD [name:value ...]\n");
		return 2;
	}
	cred.access_key_id = getenv("SIGV4_ACCESS_KEY_ID");
	cred.secret_access_key = getenv("SIGV4_SECRET_ACCESS_KEY");
	cred.region = argv[4];
	cred.service = "s3";
	tgt.endpoint = argv[1];
	tgt.bucket = argv[2];
	tgt.path_style = strcmp(argv[3], "1") == 0;
	if (cred.access_key_id == NULL || cred.secret_access_key == NULL ||
	    sigv4_parse_amz_date(argv[8], &now) != 0)
		return 2;
	for (int i = 10; i < argc; i++) {
		const char *colon = strchr(argv[i], ':');
		size_t n = colon != NULL ? (size_t)(colon - argv[i]) : 0;

		if (n == 0 || n >= sizeof(names[0]))
			return 2;
		memcpy(names[nextra], argv[i], n);
		names[nextra][n] = '\0';
		extra[nextra].name = names[nextra];
		extra[nextra].value = colon + 1;
		nextra++;
	}
	if (sigv4_sign_request(&cred, &tgt, argv[5], argv[6], argv[7], extra,
	    nextra, argv[9], now, &url, hdr) != 0)
		goto out;
	printf("%s\n", url);
	for (int i = 0; i < 4; i++)
		printf("%s\n", hdr[i]);
	rc = 0;
out:
	free(url);
	for (int i = 0; i < 4; i++)
		free(hdr[i]);
	return rc;
}

/* presign.c — `polaimg presign`: presigned S3 URLs from the command line.
 *
 * An operator's tool (hand a colleague a link to one object, test a bucket
 * policy) and the way the tests compare polaimg's signer with the AWS SDK's:
 * with --date the output is a pure function of the configuration and the
 * arguments, so it can be compared byte for byte with a reference
 * implementation run on the same inputs.
 *
 * The mapping from settings to the signer's inputs is the S3 back end's
 * (storage_s3_target, storage_s3.h), so the addressing style of the URLs
 * this verb prints and of the service's own requests is decided in exactly
 * one place; this file is the verb alone.
 */
#include "presign.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "sigv4.h"
#include "storage_s3.h"

#define PRESIGN_DEFAULT_EXPIRES 900      /* the AWS SDKs' default */
#define PRESIGN_MAX_EXPIRES     604800   /* seven days, S3's limit */

static void
presign_usage(FILE *out)
{
	fprintf(out,
	    "usage: polaimg [-c FILE] presign --method GET|PUT --key KEY\n"
	    "           [--content-type TYPE] [--expires SECONDS] "
	    "[--date YYYYMMDDTHHMMSSZ]\n"
	    "  Prints a presigned URL for KEY in the configured S3 bucket.\n"
	    "  --content-type  (PUT only) signed: the upload must send exactly it\n"
	    "  --expires       1..%d seconds, default %d\n"
	    "  --date          sign as of this UTC time instead of now\n",
	    PRESIGN_MAX_EXPIRES, PRESIGN_DEFAULT_EXPIRES);
}

int
presign_main(const struct config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "method", required_argument, NULL, 'm' },
		{ "key", required_argument, NULL, 'k' },
		{ "content-type", required_argument, NULL, 't' },
		{ "expires", required_argument, NULL, 'e' },
		{ "date", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigv4_cred cred;
	struct sigv4_target tgt;
	const char *method = NULL, *key = NULL, *ctype = NULL, *date = NULL;
	long long expires = PRESIGN_DEFAULT_EXPIRES;
	int64_t now;
	char *url = NULL, *end;
	int opt, rc = 2;

	/* main() has already run getopt over the global options: 0 makes
	 * GNU getopt start afresh on this argument vector. */
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			method = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 't':
			ctype = optarg;
			break;
		case 'e':
			errno = 0;
			expires = strtoll(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    expires < 1 || expires > PRESIGN_MAX_EXPIRES) {
				fprintf(stderr, "polaimg: presign: --expires must be "
				    "1..%d seconds\n", PRESIGN_MAX_EXPIRES);
				goto out;
			}
			break;
		case 'd':
			date = optarg;
			break;
		case 'h':
			presign_usage(stdout);
			rc = 0;
			goto out;
		default:
			presign_usage(stderr);
			goto out;
		}
	}
	if (optind != argc || method == NULL || key == NULL) {
		presign_usage(stderr);
		goto out;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0) {
		fprintf(stderr, "polaimg: presign: --method must be GET or PUT\n");
		goto out;
	}
	if (ctype != NULL && strcmp(method, "PUT") != 0) {
		fprintf(stderr, "polaimg: presign: --content-type goes with "
		    "--method PUT\n");
		goto out;
	}
	if (date != NULL) {
		if (sigv4_parse_amz_date(date, &now) != 0) {
			fprintf(stderr, "polaimg: presign: --date must look like "
			    "20240501T120000Z\n");
			goto out;
		}
	} else
		now = (int64_t)time(NULL);
	rc = 1;
	if (storage_s3_target(cfg, &cred, &tgt) != 0) {
		fprintf(stderr, "polaimg: presign: storage_bucket, storage_region, "
		    "storage_access_key_id and storage_secret_access_key must "
		    "be set\n");
		goto out;
	}
	url = sigv4_presign(&cred, &tgt, method, key, ctype, (int64_t)expires,
	    now);
	if (url == NULL) {
		fprintf(stderr, "polaimg: presign: cannot sign: check the key "
		    "(1..1024 bytes, no \".\" or \"..\" segment), the content "
		    "type, storage_endpoint and storage_bucket\n");
		goto out;
	}
	if (printf("%s\n", url) < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "polaimg: presign: cannot write the URL\n");
		goto out;
	}
	rc = 0;
out:
	free(url);
	return rc;
}

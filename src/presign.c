/* presign.c — `polaimg presign`: presigned S3 URLs from the command line.
 *
 * An operator's tool (hand a colleague a link to one object, test a bucket
 * policy) and the way the tests compare polaimg's signer with the AWS SDK's:
 * with --date the output is a pure function of the configuration and the
 * arguments, so it can be compared byte for byte with a reference
 * implementation run on the same inputs.
 *
 * The mapping from settings to the signer's inputs (presign_s3_target) lives
 * here and is used by storage_s3.c as well, so the addressing style chosen
 * for the service's own requests and for the URLs it hands out is decided in
 * exactly one place. Path style ("<endpoint>/<bucket>/<key>") is used when
 * storage_force_path_style is set, when the endpoint is an IP literal or
 * localhost (no DNS name can carry the bucket; MinIO and friends expect
 * path style there), and when the bucket is not a single DNS label (a
 * dotted bucket would not match the endpoint's wildcard TLS certificate —
 * the AWS SDKs fall back to path style for the same reason). Otherwise
 * virtual-host style ("<bucket>.<host>/<key>"), which AWS prefers.
 */
#include "presign.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "sigv4.h"

#define PRESIGN_DEFAULT_EXPIRES 900      /* the AWS SDKs' default */
#define PRESIGN_MAX_EXPIRES     604800   /* seven days, S3's limit */

/* 1 if the host of endpoint ("scheme://host[:port][/path]") is an IPv4 or
 * IPv6 literal or "localhost"; 0 otherwise, also for "" (AWS). */
static int
endpoint_is_local_literal(const char *endpoint)
{
	char host[256];
	struct in_addr a;
	const char *p;
	size_t n;

	if (endpoint == NULL || endpoint[0] == '\0')
		return 0;
	p = strstr(endpoint, "://");
	p = p != NULL ? p + 3 : endpoint;
	if (*p == '[')
		return 1;
	n = strcspn(p, ":/?#");
	if (n == 0 || n >= sizeof(host))
		return 0;
	memcpy(host, p, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a) == 1;
}

/* 1 if bucket can be a DNS label in front of the endpoint's host. */
static int
bucket_is_dns_label(const char *bucket)
{
	size_t n = strlen(bucket);

	if (n < 3 || n > 63 || bucket[0] == '-' || bucket[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = bucket[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

int
presign_s3_target(const struct config *cfg, struct sigv4_cred *cred,
    struct sigv4_target *tgt)
{
	if (cfg->storage_bucket == NULL || cfg->storage_bucket[0] == '\0' ||
	    cfg->storage_access_key_id == NULL ||
	    cfg->storage_access_key_id[0] == '\0' ||
	    cfg->storage_secret_access_key == NULL ||
	    cfg->storage_secret_access_key[0] == '\0' ||
	    cfg->storage_region == NULL || cfg->storage_region[0] == '\0')
		return -1;
	cred->access_key_id = cfg->storage_access_key_id;
	cred->secret_access_key = cfg->storage_secret_access_key;
	cred->region = cfg->storage_region;
	cred->service = "s3";
	tgt->endpoint = cfg->storage_endpoint != NULL ? cfg->storage_endpoint : "";
	tgt->bucket = cfg->storage_bucket;
	tgt->path_style = cfg->storage_force_path_style ||
	    endpoint_is_local_literal(tgt->endpoint) ||
	    !bucket_is_dns_label(tgt->bucket);
	return 0;
}

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
	if (presign_s3_target(cfg, &cred, &tgt) != 0) {
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

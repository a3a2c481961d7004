/* test_presign.c — the mapping from storage settings to the signer's inputs
 * (storage_s3_target), which decides between path and virtual-host style for
 * both the presigned URLs and the S3 back end's own requests.
 *
 * The URLs themselves are compared with the AWS SDK for JavaScript by
 * tests/reference/presign.test.mjs; here, each rule of the choice once, and
 * the URL it leads to, computed by sigv4.c at a fixed time.
 */
#include "storage_s3.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "sigv4.h"
#include "tap.h"

#define T0 INT64_C(1714564800)          /* 20240501T120000Z */

static struct config
cfg_with(const char *endpoint, const char *bucket, int force)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.storage_bucket = (char *)bucket;
	c.storage_region = (char *)"eu-west-1";
	c.storage_endpoint = (char *)endpoint;
	c.storage_access_key_id = (char *)"AKIAIOSFODNN7EXAMPLE";
	c.storage_secret_access_key = (char *)"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
	c.storage_force_path_style = force;
	return c;
}

/* The scheme://host/path of a presigned GET of "k" for c, or "" on error. */
static void
origin_of(const struct config *c, char *out, size_t outsz)
{
	struct sigv4_cred cred;
	struct sigv4_target tgt;
	char *url = NULL, *q;

	out[0] = '\0';
	if (storage_s3_target(c, &cred, &tgt) != 0)
		return;
	url = sigv4_presign(&cred, &tgt, "GET", "k", NULL, 60, T0);
	if (url == NULL)
		return;
	q = strchr(url, '?');
	if (q != NULL)
		*q = '\0';
	(void)snprintf(out, outsz, "%s", url);
	free(url);
}

static int
style(const char *endpoint, const char *bucket, int force)
{
	struct config c = cfg_with(endpoint, bucket, force);
	struct sigv4_cred cred;
	struct sigv4_target tgt;

	if (storage_s3_target(&c, &cred, &tgt) != 0)
		return -1;
	return tgt.path_style;
}

int
main(void)
{
	struct config c;
	struct sigv4_cred cred;
	struct sigv4_target tgt;
	char o[512];

	/* The rules. */
	is_int(style("", "images", 0), 0, "AWS: virtual host");
	is_int(style("", "images", 1), 1, "forced path style");
	is_int(style("https://s3.eu-west-1.amazonaws.com", "images", 0), 0,
	    "named endpoint: virtual host");
	is_int(style("http://127.0.0.1:9000", "images", 0), 1, "IPv4 endpoint: path");
	is_int(style("http://10.1.2.3", "images", 0), 1, "IPv4 without port: path");
	is_int(style("http://[::1]:9000", "images", 0), 1, "IPv6 endpoint: path");
	is_int(style("http://localhost:9000", "images", 0), 1, "localhost: path");
	is_int(style("HTTP://LocalHost", "images", 0), 1, "localhost, any case: path");
	is_int(style("http://localhost.example.org", "images", 0), 0,
	    "a name starting with localhost is a name");
	is_int(style("http://127.0.0.1.nip.example", "images", 0), 0,
	    "a name starting with an IP is a name");
	is_int(style("", "images.clinic.example", 0), 1, "dotted bucket: path");
	is_int(style("", "Images_Old", 0), 1, "legacy bucket name: path");
	is_int(style("", "-images", 0), 1, "bucket starting with '-': path");
	is_int(style("https://minio.example.org/base", "images", 0), 0,
	    "endpoint with a path: virtual host");

	/* The settings it copies. */
	c = cfg_with("http://127.0.0.1:9000", "images", 0);
	ok(storage_s3_target(&c, &cred, &tgt) == 0, "complete settings");
	is_str(cred.access_key_id, "AKIAIOSFODNN7EXAMPLE", "access key id");
	is_str(cred.region, "eu-west-1", "region");
	is_str(cred.service, "s3", "service");
	is_str(tgt.bucket, "images", "bucket");
	is_str(tgt.endpoint, "http://127.0.0.1:9000", "endpoint");

	/* Missing settings. */
	c = cfg_with("", "", 0);
	is_int(storage_s3_target(&c, &cred, &tgt), PI_ERR_INVALID, "no bucket");
	c = cfg_with("", "images", 0);
	c.storage_access_key_id = (char *)"";
	is_int(storage_s3_target(&c, &cred, &tgt), PI_ERR_INVALID, "no access key id");
	c = cfg_with("", "images", 0);
	c.storage_secret_access_key = NULL;
	is_int(storage_s3_target(&c, &cred, &tgt), PI_ERR_INVALID, "no secret");
	c = cfg_with("", "images", 0);
	c.storage_region = (char *)"";
	is_int(storage_s3_target(&c, &cred, &tgt), PI_ERR_INVALID, "no region");
	c = cfg_with(NULL, "images", 0);
	ok(storage_s3_target(&c, &cred, &tgt) == 0 && strcmp(tgt.endpoint, "") == 0,
	    "NULL endpoint means AWS");

	/* Where the URLs go. */
	c = cfg_with("", "images", 0);
	origin_of(&c, o, sizeof(o));
	is_str(o, "https://images.s3.eu-west-1.amazonaws.com/k", "AWS URL");
	c = cfg_with("http://127.0.0.1:9000", "images", 0);
	origin_of(&c, o, sizeof(o));
	is_str(o, "http://127.0.0.1:9000/images/k", "IP endpoint URL");
	c = cfg_with("http://localhost:9000/", "images", 0);
	origin_of(&c, o, sizeof(o));
	is_str(o, "http://localhost:9000/images/k", "localhost URL");
	c = cfg_with("", "images.clinic.example", 0);
	origin_of(&c, o, sizeof(o));
	is_str(o, "https://s3.eu-west-1.amazonaws.com/images.clinic.example/k",
	    "dotted bucket URL");
	c = cfg_with("https://minio.example.org:9443/base", "images", 0);
	origin_of(&c, o, sizeof(o));
	is_str(o, "https://images.minio.example.org:9443/base/k", "custom endpoint URL");
	c = cfg_with("https://minio.example.org:443", "images", 1);
	origin_of(&c, o, sizeof(o));
	is_str(o, "https://minio.example.org/images/k", "default port dropped");
	return done_testing();
}

/* presign.h — the `polaimg presign` verb, and the one place that turns the
 * storage_* settings into the SigV4 signer's inputs (shared with the S3
 * back end, so the operator's URLs and the service's requests can never
 * disagree on the endpoint, the bucket's addressing style or the region).
 */
#ifndef POLAIMG_PRESIGN_H
#define POLAIMG_PRESIGN_H

struct config;
struct sigv4_cred;
struct sigv4_target;

/* `polaimg presign --method GET|PUT --key K [--content-type T]
 * [--expires S] [--date YYYYMMDDTHHMMSSZ]`: prints one presigned URL for the
 * configured bucket, endpoint and credentials on standard output. argv[0]
 * is the verb itself. Returns the process exit status: 0, 1 (the
 * configuration cannot sign) or 2 (usage). */
int presign_main(const struct config *cfg, int argc, char **argv);

/* Fills cred and tgt from cfg (storage_bucket, storage_region,
 * storage_endpoint, storage_access_key_id, storage_secret_access_key,
 * storage_force_path_style). Path style is chosen when forced, when the
 * endpoint's host is an IP literal or "localhost", or when the bucket name
 * is not a plain DNS label (dots, upper case, '_'). The pointers in cred and
 * tgt point into cfg, which must outlive them. Returns 0, or -1 when the
 * bucket or a credential is missing. */
int presign_s3_target(const struct config *cfg, struct sigv4_cred *cred,
    struct sigv4_target *tgt);

#endif

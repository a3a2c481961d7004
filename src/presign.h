/* presign.h — the `polaimg presign` verb. The settings become the
 * signer's inputs in the S3 back end (storage_s3_target, storage_s3.h), so
 * the operator's URLs and the service's requests can never disagree on the
 * endpoint, the bucket's addressing style or the region.
 */
#ifndef POLAIMG_PRESIGN_H
#define POLAIMG_PRESIGN_H

struct config;

/* `polaimg presign --method GET|PUT --key K [--content-type T]
 * [--expires S] [--date YYYYMMDDTHHMMSSZ]`: prints one presigned URL for the
 * configured bucket, endpoint and credentials on standard output. argv[0]
 * is the verb itself. Returns the process exit status: 0, 1 (the
 * configuration cannot sign) or 2 (usage). */
int presign_main(const struct config *cfg, int argc, char **argv);

#endif

/* storage_s3.h — what of the S3 back end others may use: how the storage_*
 * settings become the SigV4 signer's inputs. The back end itself is reached
 * through storage.h (storage_s3_init, struct storage_ops); the `presign`
 * verb (presign.c) signs with the same inputs, so the operator's URLs and
 * the service's requests can never disagree.
 */
#ifndef POLAIMG_STORAGE_S3_H
#define POLAIMG_STORAGE_S3_H

struct config;
struct sigv4_cred;
struct sigv4_target;

/* Fills cred and tgt from cfg (storage_bucket, storage_region,
 * storage_endpoint, storage_access_key_id, storage_secret_access_key,
 * storage_force_path_style). Path style is chosen when forced, when the
 * endpoint's host is an IP literal or "localhost", or when the bucket name
 * is not a plain DNS label (dots, upper case, '_'). The pointers in cred and
 * tgt point into cfg, which must outlive them. Returns 0, or
 * PI_ERR_INVALID when the bucket or a credential is missing. */
int storage_s3_target(const struct config *cfg, struct sigv4_cred *cred,
    struct sigv4_target *tgt);

#endif

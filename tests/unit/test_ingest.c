/* test_ingest.c — ingest.c on real images, with local storage in a
 * mkdtemp() directory and no database.
 *
 * The sink: bytes in, the same bytes in its temp file, their SHA-256 and
 * size, the first bytes kept for sniffing, max enforced and sticky. ingest():
 * a JPEG and a PNG made by ImageMagick's convert become the three objects
 * under the image's key, measured and hashed (the hashes are those of the
 * stored files); a file that is not an image fails and leaves nothing in
 * storage and no temp file behind.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "common.h"
#include "config.h"
#include "db.h"
#include "imaging.h"
#include "ingest.h"
#include "storage.h"
#include "tap.h"
#include "unit_util.h"


static char root[256];

/* Receives the file at src through a sink; 0 or a pi_err. */
static int
sink_file(struct storage *st, struct arena *a, const char *src,
    struct ingest_sink *s, char hex[65])
{
	char buf[3000];
	size_t n;
	FILE *f = fopen(src, "rb");
	int rc = ingest_sink_open(s, st, a, 50LL * 1024 * 1024);

	if (f == NULL)
		return PI_ERR_IO;
	while (rc == 0 && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		rc = ingest_sink_write(s, buf, n);
	fclose(f);
	return rc != 0 ? rc : ingest_sink_finish(s, hex);
}

static void
new_image(struct image *img, const char *id)
{
	memset(img, 0, sizeof(*img));
	(void)snprintf(img->id, sizeof(img->id), "%s", id);
	(void)snprintf(img->storage_key, sizeof(img->storage_key),
	    "cases/11111111-1111-4111-8111-111111111111/%s", id);
	img->captured_at = -1;
	img->file_size = img->width = img->height = -1;
	img->display_size = img->thumb_size = -1;
}

/* ingest() of the picture at src; checks the objects it stored. */
static void
one(struct storage *st, struct arena *a, const char *src, const char *id,
    const char *mime, const char *display, const char *thumb)
{
	struct ingest_sink s;
	struct image img;
	char hex[65], hex2[65], path[1200];
	long long size;
	enum img_type t;
	int rc;

	new_image(&img, id);
	rc = sink_file(st, a, src, &s, hex);
	is_int(rc, 0, "sink takes the original");
	ok(ingest_file_sha256(src, hex2, &size) == 0 && strcmp(hex, hex2) == 0 &&
	    size == s.size, "sink: the SHA-256 and size of the file");
	t = img_sniff(s.head, s.headlen);
	ok(t != IMG_UNKNOWN && strcmp(img_mime(t), mime) == 0, "sniffed the type");
	rc = ingest(st, a, 100000000, &img, s.path, t, 1);
	is_int(rc, 0, "ingest stores the objects");
	ok(img.width == 640 && img.height == 480, "measured 640x480");
	is_str(img.mime_type, mime, "mime type");
	for (int v = V_ORIGINAL; v <= V_THUMBNAIL; v++) {
		const char *key = ingest_object_key(a, &img, (enum ingest_variant)v);

		ok(key != NULL && storage_local_path(st, key, path, sizeof(path)) == 0 &&
		    access(path, R_OK) == 0, "object stored and readable");
		if (v == V_DISPLAY)
			ok(key != NULL && strstr(key, display) != NULL &&
			    ingest_file_sha256(path, hex2, &size) == 0 &&
			    strcmp(hex2, img.display_sha256) == 0 &&
			    size == img.display_size, "display copy named for its type, hashed and measured");
		if (v == V_THUMBNAIL)
			ok(key != NULL && strstr(key, thumb) != NULL &&
			    ingest_file_sha256(path, hex2, &size) == 0 &&
			    strcmp(hex2, img.thumb_sha256) == 0 &&
			    size == img.thumb_size, "thumbnail named for its type, hashed and measured");
	}
	ingest_sink_discard(&s);
}

int
main(void)
{
	struct img_limits lim = { .max_pixels = 100000000,
		.memory_bytes = 1024ull << 20, .map_bytes = 1024ull << 20,
		.disk_bytes = 0, .max_dimension = 32768, .time_seconds = 60 };
	const char *top = getenv("top_srcdir");
	char sdir[600], cmd[1200], src[600], tmp[600], pdir[600];
	struct config cfg;
	struct storage *st;
	struct arena *a = arena_new();
	struct ingest_sink s;
	struct image img;
	char hex[65];

	(void)snprintf(root, sizeof(root), "/tmp/polaimg-ingest-XXXXXX");
	if (mkdtemp(root) == NULL || a == NULL)
		return 2;
	/* The pictures first: img_init() points ImageMagick's configuration
	 * (convert's too, through the environment) at polaimg's policy. */
	(void)snprintf(cmd, sizeof(cmd), "/usr/bin/convert -size 640x480 "
	    "gradient:red-blue %s/in.jpg", root);
	ok(system(cmd) == 0, "a JPEG made");
	(void)snprintf(cmd, sizeof(cmd), "/usr/bin/convert -size 640x480 "
	    "gradient:green-white %s/in.png", root);
	ok(system(cmd) == 0, "a PNG made");
	if (top != NULL) {
		(void)snprintf(pdir, sizeof(pdir), "%s/conf", top);
		lim.policy_dir = pdir;
	}
	if (!ok(img_init(&lim) == 0, "img_init (make check sets top_srcdir)"))
		return done_testing();
	(void)snprintf(sdir, sizeof(sdir), "%s/storage", root);
	st = unit_local_storage(&cfg, sdir, "configuration loads",
	    "local storage opens");
	if (st == NULL)
		return done_testing();

	/* The sink alone: max is enforced, and the error sticks. */
	is_int(ingest_sink_open(&s, st, a, 10), 0, "sink opens");
	is_int(ingest_sink_write(&s, "0123456789", 10), 0, "10 bytes of 10");
	is_int(ingest_sink_write(&s, "x", 1), PI_ERR_TOO_LARGE, "byte 11 refused");
	is_int(ingest_sink_finish(&s, hex), PI_ERR_TOO_LARGE, "error sticks");
	ingest_sink_discard(&s);
	is_int(unit_count_entries(st->tmp_dir), 0, "discard leaves no temp file");

	(void)snprintf(src, sizeof(src), "%s/in.jpg", root);
	one(st, a, src, "22222222-2222-4222-8222-222222222222", "image/jpeg",
	    "display.jpg", "thumb.jpg");
	(void)snprintf(src, sizeof(src), "%s/in.png", root);
	one(st, a, src, "33333333-3333-4333-8333-333333333333", "image/png",
	    "display.png", "thumb.png");

	/* A JPEG header on garbage: refused, nothing stored, no temp files. */
	(void)snprintf(tmp, sizeof(tmp), "%s/bad.jpg", root);
	{
		FILE *f = fopen(tmp, "wb");
		static const unsigned char junk[] = { 0xff, 0xd8, 0xff, 0xe0,
			0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 9 };

		ok(f != NULL && fwrite(junk, 1, sizeof(junk), f) == sizeof(junk) &&
		    fclose(f) == 0, "a broken JPEG made");
	}
	new_image(&img, "44444444-4444-4444-8444-444444444444");
	is_int(sink_file(st, a, tmp, &s, hex), 0, "sink takes it");
	ok(ingest(st, a, 100000000, &img, s.path, IMG_JPEG, 1) != 0,
	    "ingest refuses a broken JPEG");
	ingest_sink_discard(&s);
	(void)snprintf(tmp, sizeof(tmp), "%s/storage/cases/11111111-1111-4111-"
	    "8111-111111111111/44444444-4444-4444-8444-444444444444", root);
	ok(access(tmp, F_OK) != 0 || unit_count_entries(tmp) == 0,
	    "nothing of it in storage");
	is_int(unit_count_entries(st->tmp_dir), 0, "no temp file left");

	storage_close(st);
	cfg_free(&cfg);
	arena_free(a);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	(void)system(cmd);
	return done_testing();
}

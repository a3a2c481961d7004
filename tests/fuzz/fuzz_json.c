/* fuzz_json.c — libFuzzer harness for the JSON bodies of the API.
 *
 * Build and run: `make fuzz` (see tests/fuzz/run.sh, which links this
 * harness with every library module: the handlers need them all).
 *
 * The input is a request body as POST /api/v1/images/upload-url receives it.
 * It goes through http_parse_json_object() — json-c's tokener with exactly
 * the service's flags (strict, UTF-8 validated, depth 32, nothing after the
 * object) — and, when it is an object, through handlers_upload_url_fields(),
 * the extraction and validation of every member. Besides memory safety the
 * harness checks the contract: a body judged valid has a fileName of 1..255
 * characters of text, a contentType, a canonical lower-case UUID as caseId,
 * an eyeSide and imageType from their lists, an expiresIn within bounds and
 * a fileSize that is -1 or non-negative; an invalid one has a non-empty
 * details array of {field, message} objects. The details are serialised as
 * the service would send them. Any violation aborts (a crasher); crashers
 * become inputs in tests/fuzz/corpus/json/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "db.h"
#include "handlers.h"
#include "http.h"
#include "validate.h"

#define FUZZ_TTL 3600

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fz_eyes[] = { "left", "right", "both", "unknown", NULL };
static const char *const fz_types[] = { "slit_lamp", "fundus", "oct", "other", NULL };

static void
fz_check_valid(const struct upload_url_fields *f, const struct image *img)
{
	char canon[37];

	if (f->file_name == NULL || f->file_name[0] == '\0' ||
	    !val_text(f->file_name, strlen(f->file_name), 255))
		abort();
	if (f->content_type == NULL || f->content_type[0] == '\0')
		abort();
	if (!val_uuid(img->case_id, canon) || strcmp(canon, img->case_id) != 0)
		abort();
	if (val_enum(img->eye_side, fz_eyes) < 0 ||
	    val_enum(img->image_type, fz_types) < 0)
		abort();
	if (f->has_expires && (f->expires_in < 1 || f->expires_in > FUZZ_TTL))
		abort();
	if (f->file_size < -1)
		abort();
	if (img->description != NULL &&
	    !val_text(img->description, strlen(img->description), 2000))
		abort();
}

static void
fz_check_details(json_object *details)
{
	size_t n;

	if (!json_object_is_type(details, json_type_array))
		abort();
	n = json_object_array_length(details);
	if (n == 0)
		abort();
	for (size_t i = 0; i < n; i++) {
		json_object *d = json_object_array_get_idx(details, i), *v;

		if (!json_object_object_get_ex(d, "field", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    !json_object_object_get_ex(d, "message", &v) ||
		    !json_object_is_type(v, json_type_string))
			abort();
	}
	if (json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct upload_url_fields f;
	struct image img;
	json_object *body, *details;

	if (size > 64 * 1024)
		return 0;
	body = http_parse_json_object((const char *)data, size);
	if (body == NULL)
		return 0;
	if (!json_object_is_type(body, json_type_object))
		abort();
	details = handlers_upload_url_fields(body, FUZZ_TTL, &f, &img);
	if (details == NULL)
		fz_check_valid(&f, &img);
	else
		fz_check_details(details);
	json_object_put(details);
	json_object_put(body);
	return 0;
}

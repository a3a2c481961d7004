-- 005_people.sql — who uploaded an image, and what kind of date its
-- capturedAt is.
--
-- The image resource carries its uploader's name and role, and the case
-- list its patient's name and hospital number (docs/api.md). polaimg reads
-- them from users (name) and patient_cases (patient_name, hn) when those
-- columns exist, as on a PolaCare database, through to_jsonb(row) ->> 'name':
-- an expression that is NULL where the column is missing (the stand-in
-- tables of 001 have none) and that, unlike a view, puts no dependency on
-- the platform's columns (its own migrations may alter them).
--
-- The uploader is joined on case_images.uploaded_by (text) = users.id,
-- whose type is the platform's (uuid, or text on older Prisma schemas).
-- polaimg_user_ref(text) turns the text into that type, so the join is an
-- index lookup on the primary key; an id that is not a UUID (none is:
-- polaimg writes the ids of authenticated users) matches no uuid row.
DO $$
DECLARE
    typ regtype;
BEGIN
    SELECT a.atttypid::regtype INTO typ
      FROM pg_attribute a
     WHERE a.attrelid = 'users'::regclass AND a.attname = 'id'
       AND NOT a.attisdropped;
    IF typ = 'uuid'::regtype THEN
        CREATE OR REPLACE FUNCTION polaimg_user_ref(v text) RETURNS uuid
        LANGUAGE sql IMMUTABLE AS $b$
            SELECT CASE WHEN v ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                        THEN v::uuid END
        $b$;
    ELSE
        EXECUTE format($f$
            CREATE OR REPLACE FUNCTION polaimg_user_ref(v text) RETURNS %s
            LANGUAGE sql IMMUTABLE AS $b$ SELECT v::%s $b$ $f$, typ, typ);
    END IF;
END
$$;

-- Which kind of date captured_at is: 'client' (given with the upload),
-- 'exif' (the image's DateTimeOriginal) or 'upload' (none was: the upload
-- time). Rows written before this column have NULL: the API reports
-- 'upload' when captured_at is NULL and 'client' otherwise (a date polaimg
-- was given or read, which it can no longer tell apart).
ALTER TABLE case_images
    ADD COLUMN IF NOT EXISTS captured_source text;

-- width and height are from now on the size as displayed, after the EXIF
-- orientation (a phone photo 4032x3024 with orientation 6 is 3024x4032).
-- Rows written before keep the size as stored: the orientation is in the
-- original's bytes, which a migration does not read. Nothing is changed
-- here; docs/api.md says so.

-- 001_base.sql — polaimg's tables, on an empty database or an existing
-- PolaCare one.
--
-- On an empty database this creates minimal stand-ins for the two tables
-- polaimg reads but does not own: users(id, role, is_active) and
-- patient_cases(id, patient_id). A deployment may replace them with views
-- over its own tables. On a PolaCare database those tables exist and are
-- left alone; case_images is extended column by column, never rebuilt, so no
-- row is lost. Applied once, in one transaction, by `polaimg migrate`.

CREATE TABLE IF NOT EXISTS users (
    id          uuid PRIMARY KEY,
    role        text NOT NULL DEFAULT 'patient'
                CHECK (role IN ('patient', 'doctor', 'admin')),
    is_active   boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS patient_cases (
    id          uuid PRIMARY KEY,
    patient_id  uuid NOT NULL
);

CREATE TABLE IF NOT EXISTS case_images (
    id          uuid PRIMARY KEY,
    case_id     uuid NOT NULL REFERENCES patient_cases (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The columns polaimg needs. On a PolaCare table some exist already (with
-- Prisma's types: text ids, enum "EyeSide", timestamp(3)); ADD COLUMN IF NOT
-- EXISTS keeps theirs.
ALTER TABLE case_images
    ADD COLUMN IF NOT EXISTS image_url       text,
    ADD COLUMN IF NOT EXISTS thumbnail_url   text,
    ADD COLUMN IF NOT EXISTS storage_type    text,
    ADD COLUMN IF NOT EXISTS image_type      text,
    ADD COLUMN IF NOT EXISTS eye_side        text,
    ADD COLUMN IF NOT EXISTS description     text,
    ADD COLUMN IF NOT EXISTS "order"         integer,
    ADD COLUMN IF NOT EXISTS captured_at     timestamptz,
    ADD COLUMN IF NOT EXISTS file_size       bigint,
    ADD COLUMN IF NOT EXISTS mime_type       text,
    ADD COLUMN IF NOT EXISTS width           integer,
    ADD COLUMN IF NOT EXISTS height          integer,
    ADD COLUMN IF NOT EXISTS sha256          text,
    ADD COLUMN IF NOT EXISTS status          text NOT NULL DEFAULT 'ready',
    ADD COLUMN IF NOT EXISTS uploaded_by     text,
    ADD COLUMN IF NOT EXISTS storage_key     text,
    ADD COLUMN IF NOT EXISTS display_mime    text,
    ADD COLUMN IF NOT EXISTS display_size    bigint,
    ADD COLUMN IF NOT EXISTS display_sha256  text,
    ADD COLUMN IF NOT EXISTS thumb_mime      text,
    ADD COLUMN IF NOT EXISTS thumb_size      bigint,
    ADD COLUMN IF NOT EXISTS thumb_sha256    text,
    ADD COLUMN IF NOT EXISTS upload_expires_at timestamptz,
    ADD COLUMN IF NOT EXISTS deleted_at      timestamptz,
    ADD COLUMN IF NOT EXISTS deleted_by      text,
    ADD COLUMN IF NOT EXISTS purged_at       timestamptz;

CREATE INDEX IF NOT EXISTS case_images_case_list_idx
    ON case_images (case_id, "order", created_at)
    WHERE status = 'ready' AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS case_images_pending_idx
    ON case_images (upload_expires_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS case_images_deleted_idx
    ON case_images (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL;

-- Enum-typed columns of an existing PolaCare table (eye_side is "EyeSide",
-- perhaps image_type and storage_type too): polaimg writes through
-- polaimg_<column>(text), which maps its lower-case values onto the enum's
-- own labels, adding a label the enum lacks in the enum's own letter case.
-- On a fresh database the columns are text and the functions are lower().
DO $$
DECLARE
    col text;
    typ regtype;
    is_enum boolean;
    upper_case boolean;
    wanted text[];
    v text;
BEGIN
    FOREACH col IN ARRAY ARRAY['eye_side', 'image_type', 'storage_type'] LOOP
        SELECT a.atttypid::regtype, t.typtype = 'e'
          INTO typ, is_enum
          FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = 'case_images'::regclass AND a.attname = col
           AND NOT a.attisdropped;
        IF is_enum THEN
            wanted := CASE col
                WHEN 'eye_side' THEN ARRAY['left', 'right', 'both', 'unknown']
                WHEN 'image_type' THEN ARRAY['slit_lamp', 'fundus', 'oct', 'other']
                ELSE ARRAY['local', 's3', 'supabase'] END;
            SELECT bool_and(e.enumlabel = upper(e.enumlabel))
              INTO upper_case FROM pg_enum e WHERE e.enumtypid = typ;
            FOREACH v IN ARRAY wanted LOOP
                IF NOT EXISTS (SELECT 1 FROM pg_enum e WHERE e.enumtypid = typ
                                  AND lower(e.enumlabel) = v) THEN
                    EXECUTE format('ALTER TYPE %s ADD VALUE %L', typ,
                                   CASE WHEN upper_case THEN upper(v) ELSE v END);
                END IF;
            END LOOP;
            EXECUTE format($f$
                CREATE OR REPLACE FUNCTION polaimg_%s(v text) RETURNS %s
                LANGUAGE sql STABLE AS $b$
                    SELECT e.enumlabel::text::%s FROM pg_enum e
                     WHERE e.enumtypid = %s::regtype AND lower(e.enumlabel) = lower(v)
                $b$ $f$, col, typ, typ, quote_literal(typ::text));
        ELSE
            EXECUTE format($f$
                CREATE OR REPLACE FUNCTION polaimg_%s(v text) RETURNS text
                LANGUAGE sql IMMUTABLE AS $b$ SELECT lower(v) $b$ $f$, col);
        END IF;
    END LOOP;
END
$$;

-- The audit trail: append-only. polaimg inserts; it never updates or
-- deletes a row (the database role it runs as may be denied both).
CREATE TABLE IF NOT EXISTS image_events (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    user_id     text,
    role        text,
    action      text NOT NULL,
    image_id    text,
    case_id     text,
    variant     text,
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
    remote_addr text,
    request_id  text
);
CREATE INDEX IF NOT EXISTS image_events_image_idx ON image_events (image_id, created_at);
CREATE INDEX IF NOT EXISTS image_events_user_idx ON image_events (user_id, created_at);

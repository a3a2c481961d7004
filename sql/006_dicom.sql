-- 006_dicom.sql — DICOM originals: their frame count and identifiers, and
-- the hospital number of a case's patient for the wrong-patient check.
--
-- Columns are added, never rebuilt, as in 001 (on a PolaCare table too).
-- A SOP Instance UID names one DICOM object the world over: the unique
-- index keeps one live row per UID (a deleted, not yet purged, row still
-- holds it; a purged one does not, so the object may be stored again).

ALTER TABLE case_images
    ADD COLUMN IF NOT EXISTS frames                  integer,
    ADD COLUMN IF NOT EXISTS modality                text,
    ADD COLUMN IF NOT EXISTS manufacturer            text,
    ADD COLUMN IF NOT EXISTS manufacturer_model_name text,
    ADD COLUMN IF NOT EXISTS study_instance_uid      text,
    ADD COLUMN IF NOT EXISTS series_instance_uid     text,
    ADD COLUMN IF NOT EXISTS sop_instance_uid        text;

CREATE UNIQUE INDEX IF NOT EXISTS case_images_sop_instance_idx
    ON case_images (sop_instance_uid)
    WHERE sop_instance_uid IS NOT NULL AND purged_at IS NULL;

-- The hospital number (HN) of a case's patient, or NULL: PolaCare keeps it
-- in patient_cases.hn and users.hn; polaimg's own stand-in tables have
-- neither (a deployment may add one). Looked up by name at each call, so a
-- column added later counts; empty values are no number.
CREATE OR REPLACE FUNCTION polaimg_case_hn(cid text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    hn  text;
    typ text;
BEGIN
    SELECT format_type(a.atttypid, a.atttypmod) INTO typ
      FROM pg_attribute a
     WHERE a.attrelid = 'patient_cases'::regclass AND a.attname = 'id'
       AND NOT a.attisdropped;
    IF EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = 'patient_cases'::regclass
                  AND a.attname = 'hn' AND NOT a.attisdropped) THEN
        EXECUTE format('SELECT nullif(btrim(c.hn::text), '''') '
                       'FROM patient_cases c WHERE c.id = $1::%s', typ)
           INTO hn USING cid;
    END IF;
    IF hn IS NULL AND EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = 'users'::regclass
                  AND a.attname = 'hn' AND NOT a.attisdropped) THEN
        EXECUTE format('SELECT nullif(btrim(u.hn::text), '''') '
                       'FROM patient_cases c JOIN users u '
                       'ON u.id::text = c.patient_id::text '
                       'WHERE c.id = $1::%s', typ)
           INTO hn USING cid;
    END IF;
    RETURN hn;
END
$$;

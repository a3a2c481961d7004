-- 002_case_versions.sql — a version number per case that changes with every
-- change to the case's images.
--
-- A worker keeps the JSON of the case lists it answered (src/listcache.c)
-- and uses a copy only while the case's version is the one the copy was
-- made at; the version is read with the user and the case in the one
-- statement every list request runs anyway. The trigger below sets a new
-- version, in the changing transaction, on every INSERT, UPDATE or DELETE
-- of case_images, whoever makes it (polaimg, the clinic application, an
-- operator in psql), and on TRUNCATE. Versions come from one sequence, so
-- a number is never used twice, even after a row here is removed.
--
-- The trigger function runs with the rights of its owner (the role that
-- applies migrations), so the role polaimg serves with needs only SELECT on
-- polaimg_case_versions, not INSERT or UPDATE.

CREATE SEQUENCE IF NOT EXISTS polaimg_case_version_seq;

CREATE TABLE IF NOT EXISTS polaimg_case_versions (
    case_id  text PRIMARY KEY,
    version  bigint NOT NULL
);

CREATE OR REPLACE FUNCTION polaimg_case_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE polaimg_case_versions
           SET version = nextval('polaimg_case_version_seq');
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO polaimg_case_versions AS v (case_id, version)
        VALUES (OLD.case_id::text, nextval('polaimg_case_version_seq'))
        ON CONFLICT (case_id) DO UPDATE SET version = EXCLUDED.version;
    END IF;
    IF TG_OP = 'INSERT' OR
       (TG_OP = 'UPDATE' AND NEW.case_id IS DISTINCT FROM OLD.case_id) THEN
        INSERT INTO polaimg_case_versions AS v (case_id, version)
        VALUES (NEW.case_id::text, nextval('polaimg_case_version_seq'))
        ON CONFLICT (case_id) DO UPDATE SET version = EXCLUDED.version;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS polaimg_case_changed ON case_images;
CREATE TRIGGER polaimg_case_changed
    AFTER INSERT OR UPDATE OR DELETE ON case_images
    FOR EACH ROW EXECUTE FUNCTION polaimg_case_changed();

DROP TRIGGER IF EXISTS polaimg_case_truncated ON case_images;
CREATE TRIGGER polaimg_case_truncated
    AFTER TRUNCATE ON case_images
    FOR EACH STATEMENT EXECUTE FUNCTION polaimg_case_changed();

-- Cases that already have images start with a version.
INSERT INTO polaimg_case_versions (case_id, version)
SELECT case_id::text, nextval('polaimg_case_version_seq')
  FROM (SELECT DISTINCT case_id FROM case_images) AS c
ON CONFLICT (case_id) DO NOTHING;

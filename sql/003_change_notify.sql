-- 003_change_notify.sql — tell polaimg's workers when the rows access is
-- decided on change.
--
-- Each worker keeps copies of the users, cases and images it read
-- (src/authcache.c), LISTENs on the channel polaimg_changes, and drops every
-- copy when a notification arrives. These statement-level triggers send one
-- (with an empty payload; PostgreSQL folds identical ones in a transaction)
-- from every INSERT, UPDATE, DELETE or TRUNCATE of users, patient_cases and
-- case_images, at the commit of the changing transaction, whoever makes it.
--
-- A deployment where users or patient_cases is a view (over the platform's
-- own tables) gets no trigger on it; workers then find fewer than three
-- polaimg_notify triggers and keep no copies (every request reads the rows,
-- as with auth_cache_ttl = 0).

CREATE OR REPLACE FUNCTION polaimg_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('polaimg_changes', '');
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'patient_cases', 'case_images'] LOOP
        IF EXISTS (SELECT 1 FROM pg_class
                    WHERE oid = to_regclass(t) AND relkind IN ('r', 'p')) THEN
            EXECUTE format('DROP TRIGGER IF EXISTS polaimg_notify ON %I', t);
            EXECUTE format('CREATE TRIGGER polaimg_notify '
                'AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                'FOR EACH STATEMENT EXECUTE FUNCTION polaimg_notify()', t);
        END IF;
    END LOOP;
END
$$;

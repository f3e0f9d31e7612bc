-- Row-level security on the read models, keyed on the chain (the tenant), so that a reporting query
-- that forgets its chain filter still sees one chain only.
--
-- Readers (the reporting service, `claimledger report`) run every read in a transaction that does
-- `SET LOCAL ROLE claimledger_reader` and `SELECT set_config('claimledger.chain_id', <chain>, true)`.
-- The role may only SELECT, and every table of the schema with a `chain_id` column gets a policy
-- for it that keeps the rows of the configured chain. Without the setting a reader sees nothing.
--
-- Writers are unaffected: the projector connects as the tables' owner, and RLS is enabled but not
-- FORCEd, so owners (and superusers) bypass it.
--
-- The policy reads `NULLIF(current_setting(...), '')`: once a session has set a custom setting
-- with `is_local`, PostgreSQL leaves it as '' (not unset) after the transaction, and ''::uuid would
-- be an error on a pooled connection's next transaction instead of "no rows".
--
-- The role is cluster-wide and created here if missing. Creating it needs CREATEROLE; an operator
-- whose migration user lacks it creates it once beforehand (deploy/local-stack.sh does):
--   CREATE ROLE claimledger_reader NOLOGIN; GRANT claimledger_reader TO <migration user>;

DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'claimledger_reader') THEN
        BEGIN
            CREATE ROLE claimledger_reader NOLOGIN;
        EXCEPTION
            -- Another database's migration created it at the same moment (test databases share
            -- the cluster): the role exists, which is all this needs.
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    -- SET ROLE needs membership unless the user is a superuser.
    IF NOT pg_has_role(current_user, 'claimledger_reader', 'MEMBER') THEN
        EXECUTE format('GRANT claimledger_reader TO %I', current_user);
    END IF;
END;
$do$;

-- Runs as part 0008 of claimledger_create_read_models (parts run in name order, so after the
-- tables of 0006 and 0007 exist). A later part that adds tables with a chain_id must call this
-- function again for its schema; it is idempotent.
CREATE OR REPLACE FUNCTION claimledger_read_models_part_0008_row_security(target text)
RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    table_name name;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO claimledger_reader', target);
    FOR table_name IN
        SELECT c.relname
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE n.nspname = target
          AND c.relkind IN ('r', 'p')
          AND a.attname = 'chain_id'
          AND NOT a.attisdropped
        ORDER BY c.relname
    LOOP
        EXECUTE format('GRANT SELECT ON %I.%I TO claimledger_reader', target, table_name);
        EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', target, table_name);
        IF EXISTS (SELECT 1 FROM pg_policies
                   WHERE schemaname = target AND tablename = table_name
                     AND policyname = 'chain_isolation') THEN
            EXECUTE format('DROP POLICY chain_isolation ON %I.%I', target, table_name);
        END IF;
        EXECUTE format(
            $sql$CREATE POLICY chain_isolation ON %I.%I FOR SELECT TO claimledger_reader
                 USING (chain_id = NULLIF(current_setting('claimledger.chain_id', true), '')::uuid)$sql$,
            target, table_name);
    END LOOP;
END;
$fn$;

DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'read_models') THEN
        PERFORM claimledger_read_models_part_0008_row_security('read_models');
    END IF;
END;
$do$;

-- The chain rollup (0010) and the clinic rollup (0011) are now written by the projector itself, in
-- the batch's transaction, from the deltas it already computes for reimbursement_monthly: it sums
-- them per (chain, month, payer, code) and per (chain, month, clinic) in memory and writes each
-- table with one UNNEST upsert, then deletes the rows that fell to zero with a second statement
-- (crates/projector/src/rollup.rs).
--
-- Why: the FOR EACH ROW triggers ran, for every reimbursement_monthly row a batch touched, two
-- upserts and two deletes through EXECUTE format(...), each planned afresh. One remittance batch of
-- the demo (3,287 rows) spent 1.5 s in them. Set-based, the same batch is four statements.
--
-- This part drops the two triggers. The trigger functions stay defined: the parts of 0010 and 0011
-- still create the triggers when a schema is built (claimledger_create_read_models runs the parts
-- in name order, so this one runs after them and drops the triggers again), and applied migrations
-- are never edited.
--
-- Whatever writes reimbursement_monthly other than the projector (test fixtures) now writes the two
-- rollups as well. Deploy this together with the projector that writes them: a projector built
-- before this migration, still running against a migrated database, would leave the two rollups
-- behind until a rebuild.

CREATE OR REPLACE FUNCTION claimledger_read_models_part_0012_rollups_by_projector(target text)
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format(
        'DROP TRIGGER IF EXISTS reimbursement_monthly_to_chain ON %I.reimbursement_monthly',
        target);
    EXECUTE format(
        'DROP TRIGGER IF EXISTS reimbursement_monthly_to_clinic ON %I.reimbursement_monthly',
        target);
END;
$fn$;

DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'read_models') THEN
        PERFORM claimledger_read_models_part_0012_rollups_by_projector('read_models');
    END IF;
END;
$do$;

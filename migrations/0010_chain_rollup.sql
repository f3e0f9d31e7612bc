-- Chain-wide questions ("reimbursement by code and payer across every clinic, last year") read a
-- rollup without the clinic dimension. The per-clinic monthly rollup of a 500-clinic chain holds
-- about 120k rows a year, and summing them took 200-580 ms under load; the chain rollup holds one
-- row per month x payer x code (a few hundred a year), so the same answer is a small index range.
--
-- It is kept by a row trigger on reimbursement_monthly, so every write the projector makes there
-- (per-batch delta upserts, deletions of rows that fall to zero, a rebuild into a fresh schema)
-- moves the chain row by the same delta in the same transaction: the two can never disagree, and
-- the projector's code does not change. Rows whose every sum falls to zero are deleted, like the
-- per-clinic rows, so the table does not depend on how the log was cut into batches.

CREATE OR REPLACE FUNCTION claimledger_roll_up_to_chain() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    delta record;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format($sql$
            INSERT INTO %I.reimbursement_monthly_chain AS t VALUES (
                $1.chain_id, $1.month, $1.payer_id, $1.code,
                $1.billed_lines - coalesce($2.billed_lines, 0),
                $1.billed_units - coalesce($2.billed_units, 0),
                $1.billed_cents - coalesce($2.billed_cents, 0),
                $1.adjudicated_lines - coalesce($2.adjudicated_lines, 0),
                $1.denied_lines - coalesce($2.denied_lines, 0),
                $1.allowed_cents - coalesce($2.allowed_cents, 0),
                $1.paid_cents - coalesce($2.paid_cents, 0),
                $1.paid_units - coalesce($2.paid_units, 0),
                $1.patient_responsibility_cents - coalesce($2.patient_responsibility_cents, 0),
                $1.paid_lines - coalesce($2.paid_lines, 0),
                $1.days_to_payment_sum - coalesce($2.days_to_payment_sum, 0))
            ON CONFLICT (chain_id, month, payer_id, code) DO UPDATE SET
                billed_lines = t.billed_lines + EXCLUDED.billed_lines,
                billed_units = t.billed_units + EXCLUDED.billed_units,
                billed_cents = t.billed_cents + EXCLUDED.billed_cents,
                adjudicated_lines = t.adjudicated_lines + EXCLUDED.adjudicated_lines,
                denied_lines = t.denied_lines + EXCLUDED.denied_lines,
                allowed_cents = t.allowed_cents + EXCLUDED.allowed_cents,
                paid_cents = t.paid_cents + EXCLUDED.paid_cents,
                paid_units = t.paid_units + EXCLUDED.paid_units,
                patient_responsibility_cents =
                    t.patient_responsibility_cents + EXCLUDED.patient_responsibility_cents,
                paid_lines = t.paid_lines + EXCLUDED.paid_lines,
                days_to_payment_sum = t.days_to_payment_sum + EXCLUDED.days_to_payment_sum
            $sql$, TG_TABLE_SCHEMA)
        USING NEW, CASE WHEN TG_OP = 'UPDATE' THEN OLD END;
        -- A key change (never done by the projector) would also have to leave the old key.
        IF TG_OP = 'UPDATE' AND (OLD.chain_id, OLD.month, OLD.payer_id, OLD.code)
                IS DISTINCT FROM (NEW.chain_id, NEW.month, NEW.payer_id, NEW.code) THEN
            RAISE EXCEPTION 'reimbursement_monthly keys are never updated';
        END IF;
        delta := NEW;
    ELSE
        EXECUTE format($sql$
            UPDATE %I.reimbursement_monthly_chain t SET
                billed_lines = t.billed_lines - $1.billed_lines,
                billed_units = t.billed_units - $1.billed_units,
                billed_cents = t.billed_cents - $1.billed_cents,
                adjudicated_lines = t.adjudicated_lines - $1.adjudicated_lines,
                denied_lines = t.denied_lines - $1.denied_lines,
                allowed_cents = t.allowed_cents - $1.allowed_cents,
                paid_cents = t.paid_cents - $1.paid_cents,
                paid_units = t.paid_units - $1.paid_units,
                patient_responsibility_cents =
                    t.patient_responsibility_cents - $1.patient_responsibility_cents,
                paid_lines = t.paid_lines - $1.paid_lines,
                days_to_payment_sum = t.days_to_payment_sum - $1.days_to_payment_sum
            WHERE t.chain_id = $1.chain_id AND t.month = $1.month AND t.payer_id = $1.payer_id
              AND t.code = $1.code
            $sql$, TG_TABLE_SCHEMA)
        USING OLD;
        delta := OLD;
    END IF;
    EXECUTE format($sql$
        DELETE FROM %I.reimbursement_monthly_chain
        WHERE chain_id = $1 AND month = $2 AND payer_id = $3 AND code = $4
          AND billed_lines = 0 AND billed_units = 0 AND billed_cents = 0
          AND adjudicated_lines = 0 AND denied_lines = 0 AND allowed_cents = 0 AND paid_cents = 0
          AND paid_units = 0 AND patient_responsibility_cents = 0 AND paid_lines = 0
          AND days_to_payment_sum = 0
        $sql$, TG_TABLE_SCHEMA)
    USING delta.chain_id, delta.month, delta.payer_id, delta.code;
    RETURN NULL;
END;
$fn$;

CREATE OR REPLACE FUNCTION claimledger_read_models_part_0010_chain_rollup(target text)
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($sql$
        CREATE TABLE %I.reimbursement_monthly_chain (
            chain_id                     uuid   NOT NULL,
            month                        date   NOT NULL,
            payer_id                     uuid   NOT NULL,
            code                         text   NOT NULL,
            billed_lines                 bigint NOT NULL,
            billed_units                 bigint NOT NULL,
            billed_cents                 bigint NOT NULL,
            adjudicated_lines            bigint NOT NULL,
            denied_lines                 bigint NOT NULL,
            allowed_cents                bigint NOT NULL,
            paid_cents                   bigint NOT NULL,
            paid_units                   bigint NOT NULL,
            patient_responsibility_cents bigint NOT NULL,
            paid_lines                   bigint NOT NULL,
            days_to_payment_sum          bigint NOT NULL,
            PRIMARY KEY (chain_id, month, payer_id, code)
        )$sql$, target);
    -- Whatever the per-clinic rollup already holds (a live schema being upgraded).
    EXECUTE format($sql$
        INSERT INTO %1$I.reimbursement_monthly_chain
        SELECT chain_id, month, payer_id, code, sum(billed_lines), sum(billed_units),
               sum(billed_cents), sum(adjudicated_lines), sum(denied_lines), sum(allowed_cents),
               sum(paid_cents), sum(paid_units), sum(patient_responsibility_cents),
               sum(paid_lines), sum(days_to_payment_sum)
        FROM %1$I.reimbursement_monthly
        GROUP BY chain_id, month, payer_id, code$sql$, target);
    EXECUTE format($sql$
        CREATE TRIGGER reimbursement_monthly_to_chain
        AFTER INSERT OR UPDATE OR DELETE ON %I.reimbursement_monthly
        FOR EACH ROW EXECUTE FUNCTION claimledger_roll_up_to_chain()$sql$, target);
    -- Parts run in name order, so row security (part 0008) ran before this table existed.
    PERFORM claimledger_read_models_part_0008_row_security(target);
END;
$fn$;

DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'read_models') THEN
        PERFORM claimledger_read_models_part_0010_chain_rollup('read_models');
    END IF;
END;
$do$;

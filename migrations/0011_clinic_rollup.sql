-- Questions across the chain's clinics ("which clinics stand out", "paid per clinic, last year")
-- read a per-clinic monthly rollup without the payer and code dimensions: one row per clinic and
-- month (6,000 rows for a 500-clinic year instead of 120k), kept by the same kind of row trigger as
-- the chain rollup of migration 0010 and for the same reasons.

CREATE OR REPLACE FUNCTION claimledger_roll_up_to_clinic() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    delta record;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format($sql$
            INSERT INTO %I.reimbursement_monthly_clinic AS t VALUES (
                $1.chain_id, $1.month, $1.clinic_id,
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
            ON CONFLICT (chain_id, month, clinic_id) DO UPDATE SET
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
        IF TG_OP = 'UPDATE' AND (OLD.chain_id, OLD.month, OLD.clinic_id)
                IS DISTINCT FROM (NEW.chain_id, NEW.month, NEW.clinic_id) THEN
            RAISE EXCEPTION 'reimbursement_monthly keys are never updated';
        END IF;
        delta := NEW;
    ELSE
        EXECUTE format($sql$
            UPDATE %I.reimbursement_monthly_clinic t SET
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
            WHERE t.chain_id = $1.chain_id AND t.month = $1.month AND t.clinic_id = $1.clinic_id
            $sql$, TG_TABLE_SCHEMA)
        USING OLD;
        delta := OLD;
    END IF;
    EXECUTE format($sql$
        DELETE FROM %I.reimbursement_monthly_clinic
        WHERE chain_id = $1 AND month = $2 AND clinic_id = $3
          AND billed_lines = 0 AND billed_units = 0 AND billed_cents = 0
          AND adjudicated_lines = 0 AND denied_lines = 0 AND allowed_cents = 0 AND paid_cents = 0
          AND paid_units = 0 AND patient_responsibility_cents = 0 AND paid_lines = 0
          AND days_to_payment_sum = 0
        $sql$, TG_TABLE_SCHEMA)
    USING delta.chain_id, delta.month, delta.clinic_id;
    RETURN NULL;
END;
$fn$;

CREATE OR REPLACE FUNCTION claimledger_read_models_part_0011_clinic_rollup(target text)
RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($sql$
        CREATE TABLE %I.reimbursement_monthly_clinic (
            chain_id                     uuid   NOT NULL,
            month                        date   NOT NULL,
            clinic_id                    uuid   NOT NULL,
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
            PRIMARY KEY (chain_id, month, clinic_id)
        )$sql$, target);
    -- Whatever the per-clinic rollup already holds (a live schema being upgraded).
    EXECUTE format($sql$
        INSERT INTO %1$I.reimbursement_monthly_clinic
        SELECT chain_id, month, clinic_id, sum(billed_lines), sum(billed_units),
               sum(billed_cents), sum(adjudicated_lines), sum(denied_lines), sum(allowed_cents),
               sum(paid_cents), sum(paid_units), sum(patient_responsibility_cents),
               sum(paid_lines), sum(days_to_payment_sum)
        FROM %1$I.reimbursement_monthly
        GROUP BY chain_id, month, clinic_id$sql$, target);
    EXECUTE format($sql$
        CREATE TRIGGER reimbursement_monthly_to_clinic
        AFTER INSERT OR UPDATE OR DELETE ON %I.reimbursement_monthly
        FOR EACH ROW EXECUTE FUNCTION claimledger_roll_up_to_clinic()$sql$, target);
    -- Row security (part 0008) ran before this table existed.
    PERFORM claimledger_read_models_part_0008_row_security(target);
END;
$fn$;

DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'read_models') THEN
        PERFORM claimledger_read_models_part_0011_clinic_rollup('read_models');
    END IF;
END;
$do$;

-- Issue 7, part 1: the claim's life after derivation (submitted, adjudicated, resubmitted, written
-- off) and the monthly rollups the reporting service reads. The table and column names below are a
-- contract with the reporting service: change them only together with it.
--
-- The projector folds the claim aggregate's commits and writes, in the same batch transaction as
-- everything else:
-- - claims: the lifecycle columns added here (the latest submission's totals and the latest
--   remittance's), and the status.
-- - claim_ids: the claim's id on the log (a UUIDv5 of session and payer, see
--   claimledger_events::ClaimId::for_session_and_payer) for every derived claim, so the API can
--   find a claim by the id it is addressed by.
-- - claim_line_outcomes: the latest submission's lines and their latest adjudication.
-- - reimbursement_monthly and denial_reasons_monthly: per-batch deltas. A claim contributes its
--   latest submission and latest adjudication only: a resubmission or a second remittance first
--   subtracts the claim's previous contribution, then adds the new one; rows that fall to zero are
--   deleted, so the tables do not depend on how the log was cut into batches.

-- A batch folds every commit of a claim before it writes, so one UPDATE may move a claim through
-- several statuses at once (draft to paid when submission and remittance land in one batch). The
-- check therefore allows every move the lifecycle can make in one or more steps: nothing goes back
-- to draft, only a draft becomes submitted, and written_off is final. A corrected remittance may
-- turn a paid claim into a denied one and back.
CREATE OR REPLACE FUNCTION claimledger_check_claim_status_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    IF (OLD.status, NEW.status) IN (
        ('draft', 'submitted'),
        ('draft', 'paid'),
        ('draft', 'denied'),
        ('draft', 'resubmitted'),
        ('draft', 'written_off'),
        ('submitted', 'paid'),
        ('submitted', 'denied'),
        ('submitted', 'resubmitted'),
        ('submitted', 'written_off'),
        ('paid', 'denied'),
        ('paid', 'resubmitted'),
        ('paid', 'written_off'),
        ('denied', 'paid'),
        ('denied', 'resubmitted'),
        ('denied', 'written_off'),
        ('resubmitted', 'paid'),
        ('resubmitted', 'denied'),
        ('resubmitted', 'written_off')
    ) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'claim status cannot move from % to %', OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
END;
$$;

CREATE FUNCTION claimledger_read_models_part_0007_claims(target_schema text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    -- 0003 created the status check inline, so PostgreSQL named it claims_status_check.
    EXECUTE format($sql$
        ALTER TABLE %I.claims
            DROP CONSTRAINT claims_status_check,
            ADD CONSTRAINT claims_status_check CHECK (status IN
                ('draft', 'submitted', 'paid', 'denied', 'resubmitted', 'written_off')),
            ADD COLUMN submitted_on date NULL,
            ADD COLUMN adjudicated_on date NULL,
            ADD COLUMN payer_claim_number text NULL,
            ADD COLUMN billed_cents bigint NOT NULL DEFAULT 0,
            ADD COLUMN allowed_cents bigint NOT NULL DEFAULT 0,
            ADD COLUMN paid_cents bigint NOT NULL DEFAULT 0,
            ADD COLUMN patient_responsibility_cents bigint NOT NULL DEFAULT 0,
            ADD COLUMN written_off_cents bigint NOT NULL DEFAULT 0,
            ADD COLUMN resubmissions integer NOT NULL DEFAULT 0
    $sql$, target_schema);

    EXECUTE format($sql$
        CREATE TABLE %I.claim_ids (
            chain_id   uuid NOT NULL,
            claim_id   uuid NOT NULL,
            session_id uuid NOT NULL,
            payer_id   uuid NOT NULL,
            PRIMARY KEY (chain_id, claim_id)
        )$sql$, target_schema);

    -- adjustments: [{"group": "CO", "reason": "97", "amount_cents": 1234}, ...] in remittance
    -- order. denied: adjudicated with nothing paid. The adjudication columns are NULL until a
    -- remittance answers the line (and again after a resubmission replaces the lines).
    EXECUTE format($sql$
        CREATE TABLE %I.claim_line_outcomes (
            chain_id                     uuid     NOT NULL,
            session_id                   uuid     NOT NULL,
            payer_id                     uuid     NOT NULL,
            line_number                  integer  NOT NULL CHECK (line_number >= 1),
            code                         text     NOT NULL,
            modifiers                    text[]   NOT NULL,
            units                        integer  NOT NULL,
            charge_cents                 bigint   NOT NULL,
            allowed_cents                bigint   NULL,
            paid_cents                   bigint   NULL,
            patient_responsibility_cents bigint   NULL,
            paid_units                   integer  NULL,
            denied                       boolean  NOT NULL DEFAULT false,
            adjustments                  jsonb    NOT NULL DEFAULT '[]',
            PRIMARY KEY (chain_id, session_id, payer_id, line_number)
        )$sql$, target_schema);

    -- month: the first day of the date of service's month. days_to_payment_sum: the sum over paid
    -- lines of (adjudicated_on - date_of_service) in days; divide by paid_lines for the mean.
    EXECUTE format($sql$
        CREATE TABLE %I.reimbursement_monthly (
            chain_id                     uuid   NOT NULL,
            month                        date   NOT NULL,
            clinic_id                    uuid   NOT NULL,
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
            PRIMARY KEY (chain_id, month, clinic_id, payer_id, code)
        )$sql$, target_schema);

    -- The adjustments of denied lines, by group and CARC.
    EXECUTE format($sql$
        CREATE TABLE %I.denial_reasons_monthly (
            chain_id     uuid   NOT NULL,
            month        date   NOT NULL,
            clinic_id    uuid   NOT NULL,
            payer_id     uuid   NOT NULL,
            code         text   NOT NULL,
            group_code   text   NOT NULL,
            reason_code  text   NOT NULL,
            lines        bigint NOT NULL,
            amount_cents bigint NOT NULL,
            PRIMARY KEY (chain_id, month, clinic_id, payer_id, code, group_code, reason_code)
        )$sql$, target_schema);
END;
$fn$;

DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'read_models') THEN
        PERFORM claimledger_read_models_part_0007_claims('read_models');
    END IF;
END;
$do$;

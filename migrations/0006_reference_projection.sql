-- Reference data on the log (issue #5). Clinics, therapists, payers, patients, coverages and
-- referrals are now recorded as events (`ClinicRegistered`, …, `PatientForgotten`); the tables the
-- sessions API validates against become a projection of those events, and the projector keeps its
-- own copy in every read-model schema, so a rebuild no longer depends on the sessions API's rows.
--
-- Part 1: the sessions API's tables.
--
-- Every projected row records the log sequence of the commit it reflects (`last_sequence`), so
-- upserts are idempotent and never move a row backwards; `created_at` is set from the commit's
-- recorded_at, so a table rebuilt from the log equals the one written on the command path. Rows
-- written before this migration keep 0: they are not on the log (see ARCHITECTURE.md).
ALTER TABLE clinics ADD COLUMN last_sequence bigint NOT NULL DEFAULT 0;
ALTER TABLE therapists ADD COLUMN last_sequence bigint NOT NULL DEFAULT 0;
ALTER TABLE payers ADD COLUMN last_sequence bigint NOT NULL DEFAULT 0;
ALTER TABLE coverages ADD COLUMN last_sequence bigint NOT NULL DEFAULT 0;
ALTER TABLE referrals ADD COLUMN last_sequence bigint NOT NULL DEFAULT 0;
ALTER TABLE patients ADD COLUMN last_sequence bigint NOT NULL DEFAULT 0;
-- A forgotten patient stays (pseudonymous), so history and claims still add up; their PHI is gone.
ALTER TABLE patients ADD COLUMN forgotten boolean NOT NULL DEFAULT false;

-- PHI moves out of the projected tables into tables of its own, keyed by id. They are written on
-- the command path only, never from the log (the log does not hold PHI), and deleting a patient's
-- rows here is what forgetting them means.
CREATE TABLE patient_phi (
    chain_id       uuid NOT NULL REFERENCES chains (id),
    patient_id     uuid NOT NULL,
    given_name     text NOT NULL,
    family_name    text NOT NULL,
    date_of_birth  date NOT NULL,
    PRIMARY KEY (chain_id, patient_id)
);
INSERT INTO patient_phi (chain_id, patient_id, given_name, family_name, date_of_birth)
SELECT chain_id, id, given_name, family_name, date_of_birth FROM patients;
ALTER TABLE patients
    DROP COLUMN given_name,
    DROP COLUMN family_name,
    DROP COLUMN date_of_birth;

-- A coverage's member id is PHI: the log names the coverage by its id only.
CREATE TABLE coverage_phi (
    chain_id     uuid NOT NULL REFERENCES chains (id),
    coverage_id  uuid NOT NULL,
    patient_id   uuid NOT NULL,
    member_id    text NOT NULL,
    PRIMARY KEY (chain_id, coverage_id)
);
CREATE INDEX coverage_phi_patient ON coverage_phi (chain_id, patient_id);
INSERT INTO coverage_phi (chain_id, coverage_id, patient_id, member_id)
SELECT chain_id, id, patient_id, member_id FROM coverages;
ALTER TABLE coverages DROP COLUMN member_id;

-- Projected tables reference each other only through the log's order (a coverage's patient was
-- registered, and validated, before the coverage was appended), so foreign keys between them would
-- only get in the way of rebuilding one of them from the log. References to `chains`, which is not
-- a projection, stay.
ALTER TABLE coverages
    DROP CONSTRAINT coverages_chain_id_patient_id_fkey,
    DROP CONSTRAINT coverages_chain_id_payer_id_fkey;
ALTER TABLE referrals DROP CONSTRAINT referrals_chain_id_patient_id_fkey;
ALTER TABLE session_slots
    DROP CONSTRAINT session_slots_chain_id_clinic_id_fkey,
    DROP CONSTRAINT session_slots_chain_id_therapist_id_fkey,
    DROP CONSTRAINT session_slots_chain_id_patient_id_fkey;

-- Part 2: the projector's copy, one set per read-model schema (see 0005 for the part mechanism).
-- The projector's `Directory` (clinic NPI, tax id, time zone, place of service; therapist NPI) reads
-- these tables of its own schema, so `projector rebuild` is self-contained. Column names are a
-- contract: reports join `clinics` (name, state as region) and `payers` (name, rules_key).
CREATE FUNCTION claimledger_read_models_part_0006_reference(target_schema text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($sql$
        CREATE TABLE %I.clinics (
            chain_id         uuid   NOT NULL,
            clinic_id        uuid   NOT NULL,
            name             text   NOT NULL,
            npi              text   NOT NULL,
            tax_id           text   NOT NULL,
            address_line     text   NOT NULL,
            city             text   NOT NULL,
            state            text   NOT NULL,
            postal_code      text   NOT NULL,
            time_zone        text   NOT NULL,
            place_of_service text   NOT NULL,
            last_sequence    bigint NOT NULL,
            PRIMARY KEY (chain_id, clinic_id)
        )$sql$, target_schema);
    EXECUTE format($sql$
        CREATE TABLE %I.therapists (
            chain_id       uuid   NOT NULL,
            therapist_id   uuid   NOT NULL,
            name           text   NOT NULL,
            npi            text   NOT NULL,
            licence_number text   NOT NULL,
            licence_state  text   NOT NULL,
            last_sequence  bigint NOT NULL,
            PRIMARY KEY (chain_id, therapist_id)
        )$sql$, target_schema);
    EXECUTE format($sql$
        CREATE TABLE %I.payers (
            chain_id      uuid   NOT NULL,
            payer_id      uuid   NOT NULL,
            name          text   NOT NULL,
            rules_key     text   NOT NULL,
            last_sequence bigint NOT NULL,
            PRIMARY KEY (chain_id, payer_id)
        )$sql$, target_schema);
    -- Pseudonymous: the log holds no PHI, so neither does any read model.
    EXECUTE format($sql$
        CREATE TABLE %I.patients (
            chain_id      uuid    NOT NULL,
            patient_id    uuid    NOT NULL,
            forgotten     boolean NOT NULL,
            last_sequence bigint  NOT NULL,
            PRIMARY KEY (chain_id, patient_id)
        )$sql$, target_schema);
    EXECUTE format($sql$
        CREATE TABLE %I.coverages (
            chain_id      uuid   NOT NULL,
            coverage_id   uuid   NOT NULL,
            patient_id    uuid   NOT NULL,
            payer_id      uuid   NOT NULL,
            valid_from    date   NOT NULL,
            valid_to      date   NULL,
            last_sequence bigint NOT NULL,
            PRIMARY KEY (chain_id, coverage_id)
        )$sql$, target_schema);
    EXECUTE format($sql$
        CREATE TABLE %I.referrals (
            chain_id          uuid    NOT NULL,
            referral_id       uuid    NOT NULL,
            patient_id        uuid    NOT NULL,
            referring_npi     text    NOT NULL,
            diagnoses         text[]  NOT NULL,
            authorised_visits integer NOT NULL,
            issued_on         date    NOT NULL,
            expires_on        date    NOT NULL,
            last_sequence     bigint  NOT NULL,
            PRIMARY KEY (chain_id, referral_id)
        )$sql$, target_schema);
END;
$fn$;

DO $do$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'read_models') THEN
        PERFORM claimledger_read_models_part_0006_reference('read_models');
    END IF;
END;
$do$;

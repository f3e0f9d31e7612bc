-- Read models grow by parts. From here on, a migration that adds read-model tables does not edit
-- claimledger_create_read_models (several migrations doing so would each carry a full copy of the
-- body). It defines `claimledger_read_models_part_<NNNN>_<name>(target_schema text)` creating its
-- tables in the given schema, then calls it once for the live schema `read_models` if that exists.
-- The function below, unchanged from 0003 except for its last loop, runs every part in name order,
-- so `projector rebuild` builds the full shape.

CREATE OR REPLACE FUNCTION claimledger_create_read_models(target_schema text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    part name;
BEGIN
    EXECUTE format('CREATE SCHEMA %I', target_schema);

    -- One row per session: its lifecycle state, what was delivered, and its billed units.
    -- log_events holds the session's own log events (rkyv, checked on read) so that a projector
    -- resuming in the middle of a session rebuilds its fold without re-reading the log.
    EXECUTE format($sql$
        CREATE TABLE %I.sessions (
            chain_id         uuid     NOT NULL,
            session_id       uuid     NOT NULL,
            clinic_id        uuid     NOT NULL,
            therapist_id     uuid     NULL,
            patient_id       uuid     NULL,
            payer_id         uuid     NULL,
            status           text     NOT NULL,
            scheduled_start  timestamptz NULL,
            date_of_service  date     NULL,
            planned_minutes  integer  NULL,
            service_minutes  integer  NOT NULL,
            modality_minutes integer  NOT NULL,
            services         jsonb    NOT NULL,
            diagnoses        text[]   NOT NULL,
            unit_codes       text[]   NOT NULL,
            unit_counts      integer[] NOT NULL,
            total_units      integer  NOT NULL,
            last_sequence    bigint   NOT NULL,
            log_events       bytea    NOT NULL,
            PRIMARY KEY (chain_id, session_id)
        )$sql$, target_schema);

    -- One claim per billable completed session and payer (a session has one payer). The header
    -- carries what derivation used (rules version and its hash) and what the scrubber found.
    -- derivation_error is set, with no lines, when no claim could be derived (no rules in force for
    -- the date of service, provider data missing, a code without a price).
    EXECUTE format($sql$
        CREATE TABLE %I.claims (
            chain_id           uuid    NOT NULL,
            session_id         uuid    NOT NULL,
            payer_id           uuid    NOT NULL,
            clinic_id          uuid    NOT NULL,
            therapist_id       uuid    NOT NULL,
            patient_id         uuid    NOT NULL,
            -- NULL only when the clinic is missing from the directory (no time zone to date it in).
            date_of_service    date    NULL,
            status             text    NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'submitted', 'paid', 'denied', 'resubmitted')),
            payer_key          text    NULL,
            rules_version      integer NULL,
            rules_sha256       bytea   NULL,
            place_of_service   text    NULL,
            billing_npi        text    NULL,
            tax_id             text    NULL,
            diagnoses          text[]  NOT NULL,
            total_charge_cents bigint  NOT NULL,
            findings           jsonb   NOT NULL,
            derivation_error   text    NULL,
            last_sequence      bigint  NOT NULL,
            PRIMARY KEY (chain_id, session_id, payer_id)
        )$sql$, target_schema);
    EXECUTE format($sql$
        CREATE TRIGGER claims_status_transition BEFORE UPDATE OF status ON %I.claims
        FOR EACH ROW EXECUTE FUNCTION claimledger_check_claim_status_transition()
    $sql$, target_schema);

    -- CMS-1500 item 24, one row per line: code, up to four modifiers, diagnosis pointers (letters
    -- into the header's diagnoses), units, charge in cents, rendering NPI.
    EXECUTE format($sql$
        CREATE TABLE %I.claim_lines (
            chain_id           uuid     NOT NULL,
            session_id         uuid     NOT NULL,
            payer_id           uuid     NOT NULL,
            line_number        smallint NOT NULL CHECK (line_number >= 1),
            code               text     NOT NULL,
            modifiers          text[]   NOT NULL,
            diagnosis_pointers text     NOT NULL,
            units              integer  NOT NULL CHECK (units >= 0),
            charge_cents       bigint   NOT NULL,
            rendering_npi      text     NOT NULL,
            PRIMARY KEY (chain_id, session_id, payer_id, line_number)
        )$sql$, target_schema);

    -- Billed units per therapist per date of service, and per clinic per code per date of service.
    -- The projector adds per-batch deltas (an amended claim subtracts its old units).
    EXECUTE format($sql$
        CREATE TABLE %I.therapist_day_units (
            chain_id     uuid   NOT NULL,
            therapist_id uuid   NOT NULL,
            day          date   NOT NULL,
            units        bigint NOT NULL,
            PRIMARY KEY (chain_id, therapist_id, day)
        )$sql$, target_schema);
    EXECUTE format($sql$
        CREATE TABLE %I.clinic_code_day_units (
            chain_id  uuid   NOT NULL,
            clinic_id uuid   NOT NULL,
            code      text   NOT NULL,
            day       date   NOT NULL,
            units     bigint NOT NULL,
            PRIMARY KEY (chain_id, clinic_id, code, day)
        )$sql$, target_schema);

    -- Every payer rules version the log has recorded, with the log position that recorded it: the
    -- projector rebuilds its in-memory rule book from these rows when it restarts.
    EXECUTE format($sql$
        CREATE TABLE %I.payer_rules (
            chain_id       uuid    NOT NULL,
            payer_id       uuid    NOT NULL,
            version        integer NOT NULL,
            payer_key      text    NOT NULL,
            effective_from date    NOT NULL,
            rules_toml     text    NOT NULL,
            content_sha256 bytea   NOT NULL,
            sequence       bigint  NOT NULL,
            PRIMARY KEY (chain_id, payer_id, version)
        )$sql$, target_schema);
    -- Tables added by later migrations: every function named claimledger_read_models_part_<n>
    -- (text) runs in name order, so migrations extend the read models without rewriting this body.
    FOR part IN
        SELECT proname FROM pg_proc
        WHERE proname LIKE 'claimledger\_read\_models\_part\_%'
        ORDER BY proname
    LOOP
        EXECUTE format('SELECT %I($1)', part) USING target_schema;
    END LOOP;
END;
$fn$;

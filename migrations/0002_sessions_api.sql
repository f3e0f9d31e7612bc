-- Sessions API: what the HTTP service keeps outside the event log.
--
-- The log holds every session fact. PostgreSQL holds what must not, or cannot cheaply, live there:
--   * API keys (only their SHA-256 hashes), because a key must be revocable and never replayable;
--   * idempotency records, so that a retried request returns its first answer;
--   * PHI (patient names, dates of birth, member ids), which never enters the log in clear: events
--     carry the patient id only, so deleting a patient's rows here forgets them;
--   * the reference data sessions are validated against (clinics, therapists, payers, coverages,
--     referrals), read on every command, cheaply, by primary key;
--   * session slots, the strongly consistent guard behind "one therapist is never in two overlapping
--     sessions" (see the table's comment).
-- Every table is keyed by chain: a key of one chain can never name another chain's rows, because
-- every query filters by the chain the API key belongs to, and composite foreign keys keep a row's
-- references inside its own chain.

-- btree_gist lets one exclusion constraint combine equality on ids with overlap on time ranges. It is
-- a trusted extension (PostgreSQL 13+), so the database owner may create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE chains (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A key is 32 random bytes shown once at creation; only SHA-256(key) is stored. A high-entropy
-- random key needs no slow password hash: guessing 256 bits is not feasible, and a fast hash lets
-- every request be authenticated with one indexed lookup.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    chain_id    uuid NOT NULL REFERENCES chains (id),
    key_sha256  bytea NOT NULL UNIQUE CHECK (length(key_sha256) = 32),
    role        text NOT NULL CHECK (role IN ('admin', 'front_desk', 'billing', 'analyst')),
    -- NULL: every clinic of the chain; otherwise only these clinics.
    clinic_ids  uuid[] NULL,
    label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz NULL
);

-- The first answer to a request carrying an Idempotency-Key. The request hash covers the method,
-- the path, If-Match and the body, so reusing a key for a different request is detected. The log's
-- message id for the same command is a UUIDv5 of (chain, key), so a crash between the append and
-- this insert is still deduplicated by the log.
CREATE TABLE idempotency_records (
    chain_id         uuid NOT NULL REFERENCES chains (id),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_sha256   bytea NOT NULL CHECK (length(request_sha256) = 32),
    response_status  smallint NOT NULL,
    response_etag    text NULL,
    response_location text NULL,
    response_body    bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, idempotency_key)
);

CREATE TABLE clinics (
    id                uuid PRIMARY KEY,
    chain_id          uuid NOT NULL REFERENCES chains (id),
    name              text NOT NULL,
    npi               text NOT NULL CHECK (npi ~ '^[0-9]{10}$'),
    tax_id            text NOT NULL,
    address_line      text NOT NULL,
    city              text NOT NULL,
    state             text NOT NULL CHECK (state ~ '^[A-Z]{2}$'),
    postal_code       text NOT NULL,
    -- An IANA zone name such as America/New_York: it resolves the date of service.
    time_zone         text NOT NULL,
    place_of_service  text NOT NULL CHECK (place_of_service ~ '^[0-9]{2}$'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain_id, id)
);

CREATE TABLE therapists (
    id              uuid PRIMARY KEY,
    chain_id        uuid NOT NULL REFERENCES chains (id),
    name            text NOT NULL,
    npi             text NOT NULL CHECK (npi ~ '^[0-9]{10}$'),
    licence_number  text NOT NULL,
    licence_state   text NOT NULL CHECK (licence_state ~ '^[A-Z]{2}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain_id, id)
);

CREATE TABLE payers (
    id          uuid PRIMARY KEY,
    chain_id    uuid NOT NULL REFERENCES chains (id),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain_id, id)
);

-- PHI. Nothing in this table is ever copied to the log.
CREATE TABLE patients (
    id             uuid PRIMARY KEY,
    chain_id       uuid NOT NULL REFERENCES chains (id),
    given_name     text NOT NULL,
    family_name    text NOT NULL,
    date_of_birth  date NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain_id, id)
);

-- member_id is PHI; sessions on the log name the coverage by its id only.
CREATE TABLE coverages (
    id          uuid PRIMARY KEY,
    chain_id    uuid NOT NULL,
    patient_id  uuid NOT NULL,
    payer_id    uuid NOT NULL,
    member_id   text NOT NULL,
    valid_from  date NOT NULL,
    valid_to    date NULL CHECK (valid_to IS NULL OR valid_to >= valid_from),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain_id, id),
    FOREIGN KEY (chain_id, patient_id) REFERENCES patients (chain_id, id),
    FOREIGN KEY (chain_id, payer_id) REFERENCES payers (chain_id, id)
);

CREATE TABLE referrals (
    id                 uuid PRIMARY KEY,
    chain_id           uuid NOT NULL,
    patient_id         uuid NOT NULL,
    referring_npi      text NOT NULL CHECK (referring_npi ~ '^[0-9]{10}$'),
    diagnoses          text[] NOT NULL CHECK (cardinality(diagnoses) BETWEEN 1 AND 12),
    authorised_visits  integer NOT NULL CHECK (authorised_visits > 0),
    issued_on          date NOT NULL,
    expires_on         date NOT NULL CHECK (expires_on >= issued_on),
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain_id, id),
    FOREIGN KEY (chain_id, patient_id) REFERENCES patients (chain_id, id)
);

-- One row per scheduled session: the booked interval of its therapist, plus the coverage and
-- referral it was booked under (which the log's session events do not carry).
--
-- Why here and not a calendar aggregate on the log: the exclusion constraint makes "one therapist,
-- no overlapping sessions" a single atomic check-and-insert across all of a chain's clinics and
-- across midnight, with no read-modify-write loop. The slot is written before the session's first
-- event is appended, and released (released_at set) when the session is cancelled or is a no-show,
-- so a crash between the two can only leave a slot booked for a session the log does not hold
-- (safe: it blocks a slot, it never double-books). A retry of the same request reuses the same
-- session id and finds its own slot. Referral visits are counted from these rows under a row lock
-- on the referral, so two concurrent bookings cannot both take the last authorised visit.
CREATE TABLE session_slots (
    session_id    uuid PRIMARY KEY,
    chain_id      uuid NOT NULL REFERENCES chains (id),
    clinic_id     uuid NOT NULL,
    therapist_id  uuid NOT NULL,
    patient_id    uuid NOT NULL,
    coverage_id   uuid NULL,
    referral_id   uuid NULL,
    booked        tstzrange NOT NULL CHECK (NOT isempty(booked)),
    released_at   timestamptz NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (chain_id, clinic_id) REFERENCES clinics (chain_id, id),
    FOREIGN KEY (chain_id, therapist_id) REFERENCES therapists (chain_id, id),
    FOREIGN KEY (chain_id, patient_id) REFERENCES patients (chain_id, id),
    EXCLUDE USING gist (chain_id WITH =, therapist_id WITH =, booked WITH &&) WHERE (released_at IS NULL)
);

CREATE INDEX session_slots_referral ON session_slots (referral_id) WHERE referral_id IS NOT NULL AND released_at IS NULL;

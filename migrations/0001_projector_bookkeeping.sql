-- Bookkeeping shared by every projector that folds the JetStream event log into PostgreSQL read
-- models. It is created by the log foundation (issue 2) because the integration-test harness migrates
-- every test database and needs a first migration; the projector issue uses these tables as they are.
-- Migrations are append-only: change these tables with a new file, never by editing this one.

-- How far each projection has applied the log: the stream sequence of the last commit whose effects
-- are in the read model. A projector writes this row in the same transaction as the read-model rows,
-- so a crash can never separate the two; replaying from last_sequence + 1 after a restart therefore
-- applies every commit exactly once even though log delivery is at-least-once.
CREATE TABLE projector_checkpoints (
    projection    text        NOT NULL,
    -- NULL for projections over the whole log; a chain id for projections run per chain.
    chain_id      uuid        NULL,
    last_sequence bigint      NOT NULL CHECK (last_sequence >= 0),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One checkpoint per projection and chain. NULLS NOT DISTINCT (PostgreSQL 15) makes the whole-log
-- checkpoint (chain_id NULL) unique too, which a plain unique index would not.
CREATE UNIQUE INDEX projector_checkpoints_projection_chain
    ON projector_checkpoints (projection, chain_id) NULLS NOT DISTINCT;

-- Commits a projection could not apply (undecodable, or refused by the projection's own checks).
-- The projector records them here, advances its checkpoint past them, and keeps going, so one bad
-- message never stops a read model; an operator resolves them and marks resolved_at.
CREATE TABLE parked_events (
    projection  text        NOT NULL,
    sequence    bigint      NOT NULL CHECK (sequence > 0),
    subject     text        NOT NULL,
    chain_id    uuid        NULL,
    error       text        NOT NULL,
    -- The raw log payload, kept so the commit can be re-applied after a fix without the log.
    payload     bytea       NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz NULL,
    PRIMARY KEY (projection, sequence)
);

-- Operators list what is still open.
CREATE INDEX parked_events_open ON parked_events (projection, sequence) WHERE resolved_at IS NULL;

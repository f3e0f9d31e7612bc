-- A payer registered through the sessions API names its rules: `rules_key` is the payer's identifier
-- in the rules files (e.g. `medicare-like`), and the payer's id is derived from it
-- (`PayerId::from_rules_key`), the same derivation the rules publisher uses for the payer-rules
-- aggregate on the log. That shared id is how the projector finds the rules of a session's payer.
--
-- Because the id now derives from the key, two chains that bill the same payer register the same
-- payer id: payers are unique per chain, so the primary key becomes (chain_id, id). Every foreign key
-- already references (chain_id, id).
ALTER TABLE payers DROP CONSTRAINT payers_pkey;
ALTER TABLE payers ADD PRIMARY KEY (chain_id, id);

-- Nullable only for payers registered before this migration; the API requires it from now on.
ALTER TABLE payers ADD COLUMN rules_key text NULL;
ALTER TABLE payers ADD CONSTRAINT payers_rules_key_per_chain UNIQUE (chain_id, rules_key);

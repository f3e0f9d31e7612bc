-- An API key may carry an expiry: from that instant it authenticates nothing, as if revoked.
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz NULL;

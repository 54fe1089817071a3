-- OIDC login (issue 19): people may log in through the federation's identity provider.
-- A user is linked to the provider's identity by (issuer, subject), never by email alone
-- (an email can be reassigned; the subject cannot). A user the provider created has no
-- usable password (password_hash is '!oidc', which no password matches).
ALTER TABLE users ADD COLUMN oidc_issuer text CHECK (oidc_issuer IS NULL OR length(oidc_issuer) BETWEEN 1 AND 2048);
ALTER TABLE users ADD COLUMN oidc_subject text CHECK (oidc_subject IS NULL OR length(oidc_subject) BETWEEN 1 AND 255);
ALTER TABLE users ADD CONSTRAINT users_oidc_both CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL));
CREATE UNIQUE INDEX users_oidc_identity_key ON users (oidc_issuer, oidc_subject) WHERE oidc_issuer IS NOT NULL;
-- The federation-admin flag was granted by the provider's claims (and is taken back when
-- they stop granting it); a flag given locally (admin create-user) is never touched by a login.
ALTER TABLE users ADD COLUMN federation_admin_oidc boolean NOT NULL DEFAULT false;

-- Where a membership comes from: 'local' (the People page, the API, the CLI) or 'oidc' (the
-- provider's claims, re-derived at each login of that person: a membership the claims no
-- longer grant is removed then).
ALTER TABLE memberships ADD COLUMN source text NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'oidc'));

-- How a session was opened: 'password' or 'oidc' (logging out of an 'oidc' session also
-- ends the provider's session when it offers RP-initiated logout).
ALTER TABLE sessions ADD COLUMN auth_method text NOT NULL DEFAULT 'password' CHECK (auth_method IN ('password', 'oidc'));

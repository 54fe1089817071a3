-- Languages (issue 18): the portal, emails, reports and API messages speak the reader's
-- language. users.language is a person's own choice (NULL: their browser's Accept-Language,
-- else the federation's); members.language is the language of what is sent to a member
-- (reports, notification emails; NULL: the federation's); federation_settings.language is
-- the federation's default. Codes are those internal/i18n supports.
ALTER TABLE users ADD COLUMN language text CHECK (language IS NULL OR language IN ('en', 'fr'));
ALTER TABLE members ADD COLUMN language text CHECK (language IS NULL OR language IN ('en', 'fr'));
ALTER TABLE federation_settings ADD COLUMN language text NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'fr'));

-- Time zones: the portal shows exact times in the viewer's zone (users.time_zone, an IANA
-- name; NULL: the federation's), by default the federation's (federation_settings.time_zone).
ALTER TABLE users ADD COLUMN time_zone text CHECK (time_zone IS NULL OR length(time_zone) BETWEEN 1 AND 64);
ALTER TABLE federation_settings ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64);

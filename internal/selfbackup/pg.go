package selfbackup

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// EnvPGBin is the variable naming the directory of the PostgreSQL binaries (shared with
// internal/pgcluster, which finds the server binaries the same way).
const EnvPGBin = "ARCHIPELAGO_PG_BIN"

// FindPGTool locates a PostgreSQL client program (pg_dump, pg_restore): $ARCHIPELAGO_PG_BIN,
// then the newest /usr/lib/postgresql/*/bin (Debian's layout), then PATH. pg_dump must be
// at least as new as the server it dumps, hence the newest.
func FindPGTool(name string) (string, error) {
	if d := os.Getenv(EnvPGBin); d != "" {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s has no %s", EnvPGBin, d, name)
		}
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name), nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found: install PostgreSQL's client programs (Debian: apt-get install -y postgresql-client), "+
		"or set ARCHIPELAGO_PG_DUMP to pg_dump's path (pg_restore is looked for beside it)", name)
}

func pgVersion(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// libpqParams are the connection parameters passed on to pg_dump and pg_restore; the
// others (pgx's pool_max_conns, …) would make libpq refuse the URL.
var libpqParams = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "connect_timeout": true,
	"sslmode": true, "sslcert": true, "sslkey": true, "sslrootcert": true, "sslcrl": true, "sslcrldir": true,
	"sslsni": true, "sslcompression": true, "application_name": true, "options": true, "target_session_attrs": true,
	"keepalives": true, "keepalives_idle": true, "keepalives_interval": true, "keepalives_count": true,
	"tcp_user_timeout": true, "channel_binding": true, "gssencmode": true, "krbsrvname": true,
	"requirepeer": true, "ssl_min_protocol_version": true, "ssl_max_protocol_version": true, "passfile": true,
	"service": true, "client_encoding": true,
}

// libpqConn turns a database URL (or a keyword=value string) as Archipelago accepts it into
// a connection string for libpq's programs, without the password, which is returned apart
// (for PGPASSWORD: an argument would be visible to every user of the machine).
func libpqConn(dsn string) (conn, password string, err error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", errors.New("the database URL does not parse")
		}
		if u.User != nil {
			password, _ = u.User.Password()
			u.User = url.User(u.User.Username())
		}
		q := url.Values{}
		for k, vs := range u.Query() {
			if k == "password" {
				password = vs[0]
				continue
			}
			if libpqParams[k] {
				q[k] = vs
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), password, nil
	}
	var parts []string
	rest := strings.TrimSpace(dsn)
	for rest != "" {
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			return "", "", errors.New("the database connection string is neither a URL nor key=value pairs")
		}
		k = strings.TrimSpace(k)
		after = strings.TrimLeft(after, " ")
		var v string
		if strings.HasPrefix(after, "'") {
			var b strings.Builder
			i := 1
			for ; i < len(after); i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
					b.WriteByte(after[i])
					continue
				}
				if after[i] == '\'' {
					break
				}
				b.WriteByte(after[i])
			}
			if i >= len(after) {
				return "", "", errors.New("the database connection string has an unterminated quote")
			}
			v, rest = b.String(), strings.TrimSpace(after[i+1:])
		} else {
			v, rest, _ = strings.Cut(after, " ")
			rest = strings.TrimSpace(rest)
		}
		switch {
		case k == "password":
			password = v
		case libpqParams[k]:
			parts = append(parts, k+"='"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)+"'")
		}
	}
	return strings.Join(parts, " "), password, nil
}

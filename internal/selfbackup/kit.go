package selfbackup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/restic"
)

// DumpFile is the name the dump has in every snapshot ("/archipelago.dump").
const DumpFile = "archipelago.dump"

// Tag marks the coordinator's snapshots (retention and restores only consider these).
const Tag = "archipelago-coordinator"

// Kit is the recovery kit: everything needed to reach the coordinator's backups without
// the coordinator (its database and master key lost with it). Init returns it once; it is
// printed as a shell environment file the federation's admins keep off the coordinator.
type Kit struct {
	RepositoryURL   string // RESTIC_REPOSITORY
	Password        string // RESTIC_PASSWORD
	AccessKeyID     string // AWS_ACCESS_KEY_ID
	SecretAccessKey string // AWS_SECRET_ACCESS_KEY
	Region          string // AWS_DEFAULT_REGION
	CreatedAt       time.Time
}

// String keeps the kit's secrets out of logs and %v.
func (k Kit) String() string {
	return fmt.Sprintf("recovery kit for %s (secrets redacted)", k.RepositoryURL)
}

// Repo is the restic repository the kit opens (with the backup's read+write key).
func (k Kit) Repo(cacheDir string) restic.Repo {
	return restic.Repo{URL: k.RepositoryURL, Password: k.Password, S3AccessKey: k.AccessKeyID,
		S3SecretKey: k.SecretAccessKey, S3Region: k.Region, CacheDir: cacheDir}
}

// shellQuote quotes s for a POSIX shell (and for ParseKit).
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Format writes the kit as a shell environment file (`. kit.env` sets restic's variables)
// with a header saying what it is and how to use it.
func (k Kit) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Archipelago coordinator recovery kit, made %s.\n", k.CreatedAt.UTC().Format(time.RFC3339))
	b.WriteString("# It opens the restic repository holding the coordinator's database dumps. Keep it OFF the\n")
	b.WriteString("# coordinator (a password manager of the federation's admins, a printed copy in a safe):\n")
	b.WriteString("# if the coordinator is lost, this kit and the master key's own backup rebuild it.\n")
	b.WriteString("#   archipelago admin backup restore --kit THIS_FILE --target-url postgres://…/archipelago\n")
	b.WriteString("# or by hand:  . ./THIS_FILE && restic restore latest --tag " + Tag + " --target /tmp/r\n")
	b.WriteString("#              pg_restore --no-owner --exit-on-error -d postgres://…/archipelago /tmp/r/" + DumpFile + "\n")
	b.WriteString("# See docs/deploy.md, \"The coordinator's own backup and disaster recovery\".\n")
	for _, kv := range [][2]string{{"RESTIC_REPOSITORY", k.RepositoryURL}, {"RESTIC_PASSWORD", k.Password},
		{"AWS_ACCESS_KEY_ID", k.AccessKeyID}, {"AWS_SECRET_ACCESS_KEY", k.SecretAccessKey}, {"AWS_DEFAULT_REGION", k.Region}} {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return b.String()
}

// ParseKit reads a kit written by Format (comments and blank lines ignored).
func ParseKit(r io.Reader) (Kit, error) {
	var k Kit
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			return k, fmt.Errorf("recovery kit line %d: not NAME=value", n)
		}
		v, err := shellUnquote(val)
		if err != nil {
			return k, fmt.Errorf("recovery kit line %d (%s): %w", n, name, err)
		}
		switch name {
		case "RESTIC_REPOSITORY":
			k.RepositoryURL = v
		case "RESTIC_PASSWORD":
			k.Password = v
		case "AWS_ACCESS_KEY_ID":
			k.AccessKeyID = v
		case "AWS_SECRET_ACCESS_KEY":
			k.SecretAccessKey = v
		case "AWS_DEFAULT_REGION":
			k.Region = v
		default:
			continue
		}
		seen[name] = true
	}
	if err := sc.Err(); err != nil {
		return k, err
	}
	for _, name := range []string{"RESTIC_REPOSITORY", "RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if !seen[name] {
			return k, fmt.Errorf("recovery kit: %s is missing", name)
		}
	}
	return k, nil
}

// shellUnquote undoes shellQuote (and accepts a bare word).
func shellUnquote(s string) (string, error) {
	if !strings.HasPrefix(s, "'") {
		if strings.ContainsAny(s, "'\" \\$`") {
			return "", errors.New("value must be single-quoted")
		}
		return s, nil
	}
	var b strings.Builder
	for len(s) > 0 {
		if !strings.HasPrefix(s, "'") {
			if strings.HasPrefix(s, `\'`) {
				b.WriteByte('\'')
				s = s[2:]
				continue
			}
			return "", errors.New("unexpected text after a quoted value")
		}
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated quote")
		}
		b.WriteString(s[1 : 1+end])
		s = s[2+end:]
	}
	return b.String(), nil
}

package selfbackup

import (
	"strings"
	"testing"
)

func TestLibpqConn(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, conn, password string }{
		{"postgres://arch:s3cr%27t@db:5432/archipelago?sslmode=require&pool_max_conns=10", "postgres://arch@db:5432/archipelago?sslmode=require", "s3cr't"},
		{"postgresql://db/archipelago", "postgresql://db/archipelago", ""},
		{"host=db user=arch password='a b\\'c' dbname=archipelago pool_max_conns=5", "host='db' user='arch' dbname='archipelago'", "a b'c"},
	} {
		conn, pw, err := libpqConn(c.in)
		if err != nil || conn != c.conn || pw != c.password {
			t.Errorf("libpqConn(%q) = %q, %q, %v; want %q, %q", c.in, conn, pw, err, c.conn, c.password)
		}
	}
}

func TestKitQuoting(t *testing.T) {
	t.Parallel()
	k := Kit{RepositoryURL: "s3:http://h/b/p", Password: "it's $x `y`", AccessKeyID: "GK1", SecretAccessKey: `a'b"c\d`, Region: "garage"}
	got, err := ParseKit(strings.NewReader(k.Format()))
	if err != nil || got.Password != k.Password || got.SecretAccessKey != k.SecretAccessKey || got.Region != "garage" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := ParseKit(strings.NewReader("export RESTIC_REPOSITORY='x'\n")); err == nil {
		t.Fatal("a kit without its password parsed")
	}
	if strings.Contains(k.String(), "it's") {
		t.Fatal("String shows the password")
	}
}

func TestMetadataTags(t *testing.T) {
	t.Parallel()
	m := Metadata{SchemaVersion: 22, Rows: map[string]int64{"members": 3, "audit_entries": 120}}
	back, err := metadataFromTags(m.tags())
	if err != nil || back.SchemaVersion != 22 || back.Rows["members"] != 3 || back.Rows["audit_entries"] != 120 {
		t.Fatalf("%v: %+v %v", m.tags(), back, err)
	}
	if err := m.compare(Metadata{SchemaVersion: 22, Rows: map[string]int64{"members": 3, "audit_entries": 119}}); err == nil ||
		!strings.Contains(err.Error(), "audit_entries has 119 rows") {
		t.Fatalf("compare: %v", err)
	}
}

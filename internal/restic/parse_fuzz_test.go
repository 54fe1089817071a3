package restic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// realLines are lines printed by restic 0.19.1 with --json, keyed by command.
var realLines = []struct{ command, line string }{
	{"version", `{"message_type":"version","version":"0.19.1","go_version":"go1.26.8","go_os":"linux","go_arch":"amd64"}`},
	{"init", `{"message_type":"initialized","id":"d06531978edb581692beb463bb71cec933d69964e00eb35e9cc37ea86d57b332","repository":"/tmp/rx/repo"}`},
	{"backup", `{"message_type":"status","percent_done":0.3125,"total_files":2,"files_done":1,"total_bytes":100663302,"bytes_done":31457280,"current_files":["/tmp/src/a.bin"]}`},
	{"backup", `{"message_type":"summary","files_new":2,"files_changed":0,"files_unmodified":0,"dirs_new":2,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":4,"tree_blobs":3,"data_added":3001844,"data_added_packed":3001492,"total_files_processed":2,"total_bytes_processed":3000006,"total_duration":0.649557129,"backup_start":"2026-11-21T05:50:50.815522966Z","backup_end":"2026-11-21T05:50:51.465080105Z","snapshot_id":"80c9ba1e913662b9f5e16dfc3c718ca57b8b7605b5c00be1c762db8672a0d4a6"}`},
	{"backup", `{"message_type":"error","error":{"message":"open /src/secret: permission denied"},"during":"archival","item":"/src/secret"}`},
	{"snapshots", `[{"time":"2026-11-21T05:50:50.815522966Z","tree":"4922d0387af575c1747f6ca0c72cd8c8e1ded03324fa78497730bf5406bce6f6","paths":["/tmp/rx/src"],"hostname":"vm","username":"root","program_version":"restic 0.19.1","summary":{"backup_start":"2026-11-21T05:50:50.815522966Z","backup_end":"2026-11-21T05:50:51.465080105Z","files_new":2,"files_changed":0,"files_unmodified":0,"dirs_new":2,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":4,"tree_blobs":3,"data_added":3001844,"data_added_packed":3001492,"total_files_processed":2,"total_bytes_processed":3000006},"id":"80c9ba1e913662b9f5e16dfc3c718ca57b8b7605b5c00be1c762db8672a0d4a6","short_id":"80c9ba1e"}]`},
	{"ls", `{"time":"2026-11-21T05:50:53.263122046Z","parent":"80c9ba1e913662b9f5e16dfc3c718ca57b8b7605b5c00be1c762db8672a0d4a6","tree":"4922d0387af575c1747f6ca0c72cd8c8e1ded03324fa78497730bf5406bce6f6","paths":["/tmp/rx/src"],"hostname":"vm","username":"root","program_version":"restic 0.19.1","id":"44c8195fc487e7dab7b8dbd4e9403185801777579c7c0bfb68d9797bef441aad","short_id":"44c8195f","message_type":"snapshot","struct_type":"snapshot"}`},
	{"ls", `{"name":"src","type":"dir","path":"/src","uid":0,"gid":0,"mode":2147484141,"permissions":"drwxr-xr-x","mtime":"2026-11-21T05:50:50.786277022Z","atime":"2026-11-21T05:50:50.786277022Z","ctime":"2026-11-21T05:50:50.786277022Z","inode":9980117,"message_type":"node","struct_type":"node"}`},
	{"ls", `{"name":"a.bin","type":"file","path":"/src/a.bin","uid":0,"gid":0,"size":3000000,"mode":420,"permissions":"-rw-r--r--","mtime":"2026-11-21T05:50:50.798277022Z","atime":"2026-11-21T05:50:50.798277022Z","ctime":"2026-11-21T05:50:50.798277022Z","inode":9980119,"message_type":"node","struct_type":"node"}`},
	{"restore", `{"message_type":"status","seconds_elapsed":1,"percent_done":0.5,"total_files":5,"files_restored":2,"total_bytes":3000006,"bytes_restored":1500003}`},
	{"restore", `{"message_type":"summary","total_files":5,"files_restored":5,"total_bytes":3000006,"bytes_restored":3000006}`},
	{"restore", `{"message_type":"error","error":{"message":"decrypting blob \u003cdata/edc3e6f9\u003e from pack 72f4828b7a2be4af341c64485261bd112e1bbc8e351d27fbb57fdc467c2e4fb1 failed: ciphertext verification failed"},"during":"restore","item":"/src/a.bin"}`},
	{"restore", `{"message_type":"exit_error","code":1,"message":"Fatal: There were 1 errors"}`},
	{"check", `{"message_type":"summary","num_errors":0,"broken_packs":null,"suggest_repair_index":false,"suggest_prune":false}`},
	{"check", `{"message_type":"summary","num_errors":1,"broken_packs":["72f4828b7a2be4af341c64485261bd112e1bbc8e351d27fbb57fdc467c2e4fb1"],"suggest_repair_index":false,"suggest_prune":false}`},
	{"check", `{"message_type":"error","message":"pack 72f4828b7a2be4af341c64485261bd112e1bbc8e351d27fbb57fdc467c2e4fb1 contains 2 errors: [blob edc3e6f92b234a9cdcb6b445298f15e4bd01045aa5b3bd76055209eb6d9c25d2: decrypting blob \u003cdata/edc3e6f9\u003e from pack 72f4828b7a2be4af341c64485261bd112e1bbc8e351d27fbb57fdc467c2e4fb1 failed: ciphertext verification failed unexpected pack id e00fa03235161e00d8819f9d0409e76da513358955221c2c7bcd2cd5d1e9069f]\n"}`},
	{"check", `{"message_type":"error","message":"Stat(\u003cconfig/\u003e) returned error, retrying after 958.998526ms: Stat: Get \"http://127.0.0.1:1/bucket/?location=\": dial tcp 127.0.0.1:1: connect: connection refused"}`},
	{"check", `{"message_type":"exit_error","code":1,"message":"Fatal: repository contains errors"}`},
	{"snapshots", `{"message_type":"exit_error","code":12,"message":"Fatal: wrong password or no key found"}`},
	{"snapshots", `{"message_type":"exit_error","code":10,"message":"Fatal: repository does not exist: unable to open config file: stat /tmp/rx/nope/config: no such file or directory\nIs there a repository at the following location?\n/tmp/rx/nope"}`},
	{"key list", `[{"current":true,"id":"cba05db1eb891a12d5fad3d398a991ae18579031dbf35180e6543d75a2958783","userName":"root","hostName":"vm","created":"2026-11-21 05:50:50"}]`},
	{"key add", `saved new key with ID aaded7451e1d077b950ce699275c49fff873d250276c36f2d3af84940694b206`},
	{"list", `281dfe01bc5045875a3ce586425b1b001614351b11d025184a7170d74d947e91`},
	{"cat", `{`},
	{"cat", `  "version": 2,`},
	{"check", `signal interrupt received, cleaning up`},
	{"backup", "{\"message_type\":\"status\"}\r"},
	{"backup", `{"message_type":"summary","backup_start":"not a time"}`},
	{"backup", `{"message_type":42}`},
	{"backup", ``},
}

// TestParseLineRealOutput checks the type each real line parses to.
func TestParseLineRealOutput(t *testing.T) {
	t.Parallel()
	want := []string{
		"*restic.VersionInfo", "*restic.Initialized", "*restic.Progress", "*restic.BackupSummary", "*restic.ErrorEvent",
		"*restic.RawJSON", "*restic.Snapshot", "*restic.Node", "*restic.Node", "*restic.Progress", "*restic.RestoreSummary",
		"*restic.ErrorEvent", "*restic.ExitError", "*restic.CheckSummary", "*restic.CheckSummary", "*restic.ErrorEvent",
		"*restic.ErrorEvent", "*restic.ExitError", "*restic.ExitError", "*restic.ExitError", "*restic.RawJSON", "*restic.Text",
		"*restic.Text", "*restic.Text", "*restic.Text", "*restic.Text", "*restic.Progress", "*restic.Unknown", "*restic.RawJSON",
		"*restic.Text",
	}
	if len(want) != len(realLines) {
		t.Fatalf("%d expectations for %d lines", len(want), len(realLines))
	}
	for i, l := range realLines {
		ev := ParseLine(l.command, []byte(l.line))
		if got := reflect.TypeOf(ev).String(); got != want[i] {
			t.Errorf("line %d (%s): %s, want %s", i, l.command, got, want[i])
		}
	}
	// Spot checks of decoded fields.
	if p := ParseLine("restore", []byte(realLines[9].line)).(*Progress); p.FilesDone != 2 || p.BytesDone != 1500003 || p.Command != "restore" {
		t.Errorf("restore status = %+v", p)
	}
	if e := ParseLine("restore", []byte(realLines[11].line)).(*ErrorEvent); e.Item != "/src/a.bin" || !strings.Contains(e.Message, "ciphertext") {
		t.Errorf("restore error = %+v", e)
	}
	if s := ParseLine("check", []byte(realLines[14].line)).(*CheckSummary); s.NumErrors != 1 || len(s.BrokenPacks) != 1 {
		t.Errorf("check summary = %+v", s)
	}
	if n := ParseLine("ls", []byte(realLines[8].line)).(*Node); n.Size != 3000000 || n.Path != "/src/a.bin" {
		t.Errorf("node = %+v", n)
	}
}

// FuzzParseLine checks that ParseLine never panics, always classifies a line,
// keeps non-JSON lines intact, and only types lines that are valid JSON.
func FuzzParseLine(f *testing.F) {
	commands := []string{"backup", "restore", "check", "ls", "snapshots", "init", "version", "key list", "key add", "cat", "list"}
	for _, l := range realLines {
		f.Add(l.command, []byte(l.line))
	}
	f.Fuzz(func(t *testing.T, command string, line []byte) {
		ev := ParseLine(command, line)
		if ev == nil {
			t.Fatal("nil event")
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		switch ev := ev.(type) {
		case *Text:
			if ev.Line != string(trimmed) {
				t.Fatalf("Text lost content: %q vs %q", ev.Line, trimmed)
			}
			if s := bytes.TrimSpace(trimmed); len(s) > 0 && (s[0] == '{' || s[0] == '[') && json.Valid(s) {
				// Only a typed decode failure may turn valid JSON into Text: never.
				t.Fatalf("valid JSON returned as Text: %q", line)
			}
		case *RawJSON:
			if !json.Valid(ev.Data) {
				t.Fatalf("RawJSON not valid: %q", ev.Data)
			}
		case *Unknown:
			if !json.Valid(ev.Data) {
				t.Fatalf("Unknown not valid JSON: %q", ev.Data)
			}
		default:
			if !json.Valid(bytes.TrimSpace(trimmed)) {
				t.Fatalf("%T from invalid JSON %q", ev, line)
			}
		}
		// Deterministic, and independent of the command for command-free types.
		if again := ParseLine(command, line); !reflect.DeepEqual(again, ev) {
			t.Fatalf("not deterministic: %#v vs %#v", ev, again)
		}
		for _, c := range commands {
			other := ParseLine(c, line)
			if _, isText := ev.(*Text); isText != isTextEvent(other) {
				t.Fatalf("Text-ness depends on the command: %T vs %T", ev, other)
			}
		}
	})
}

func isTextEvent(ev Event) bool { _, ok := ev.(*Text); return ok }

// FuzzSplitLines checks that the line splitter never stops a stream early,
// never returns a line longer than the limit, and loses nothing from lines
// within the limit.
func FuzzSplitLines(f *testing.F) {
	f.Add([]byte("a\nb\r\nc"), uint8(8))
	f.Add([]byte(strings.Repeat("x", 100)+"\nshort\n"), uint8(16))
	for _, l := range realLines {
		f.Add([]byte(l.line+"\n"+l.line), uint8(64))
	}
	f.Fuzz(func(t *testing.T, data []byte, limit uint8) {
		max := int(limit)%200 + 16
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 4), max)
		sc.Split(splitLines(max))
		var got [][]byte
		for sc.Scan() {
			tok := sc.Bytes()
			if len(tok) > max || bytes.IndexByte(tok, '\n') >= 0 {
				t.Fatalf("bad token %q (max %d)", tok, max)
			}
			got = append(got, bytes.Clone(tok))
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("scanner stopped: %v", err)
		}
		// Every input line of at most max bytes comes out whole, in order.
		var want [][]byte
		lines := bytes.Split(data, []byte("\n"))
		if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		for _, l := range lines {
			if len(l) < max {
				want = append(want, bytes.TrimSuffix(l, []byte("\r")))
			}
		}
		// Drop the cut lines (max bytes long, or max-1 plus a dropped "\r").
		var gotShort [][]byte
		for _, g := range got {
			if len(g) < max-1 || len(g) == max-1 && !bytes.HasSuffix(g, []byte("\r")) {
				gotShort = append(gotShort, g)
			}
		}
		if len(want) != len(gotShort) {
			t.Fatalf("short lines: got %q, want %q", gotShort, want)
		}
		for i := range want {
			if !bytes.Equal(want[i], gotShort[i]) {
				t.Fatalf("line %d: got %q, want %q", i, gotShort[i], want[i])
			}
		}
	})
}

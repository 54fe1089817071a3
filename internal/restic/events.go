package restic

import (
	"bytes"
	"cmp"
	"encoding/json"
	"time"
)

// Event is one parsed line of restic output; see [ParseLine]. The concrete
// types are the pointer types in this file.
type Event interface{ isEvent() }

// Text is a line that is not a JSON object or array: restic's plain messages
// (warnings, retries, "saved new key with ID …") and anything malformed.
type Text struct{ Line string }

// RawJSON is a JSON line without a message_type: the arrays printed by
// "snapshots" and "key list", or one line of an object.
type RawJSON struct{ Data []byte }

// Unknown is a JSON object whose message_type this package does not know, or
// a known one printed by a command that does not use it.
type Unknown struct {
	MessageType string
	Data        []byte
}

// Progress is a status event of backup or restore, and what the progress
// callback receives. Fields a command does not report stay zero.
type Progress struct {
	// Command is the restic command that reported it ("backup", "restore").
	Command          string
	SecondsElapsed   uint64
	SecondsRemaining uint64 // backup only
	PercentDone      float64
	TotalFiles       uint64
	FilesDone        uint64 // backup: files_done; restore: files_restored
	FilesSkipped     uint64 // restore only
	TotalBytes       uint64
	BytesDone        uint64 // backup: bytes_done; restore: bytes_restored
	BytesSkipped     uint64 // restore only
	ErrorCount       uint64 // backup only
	CurrentFiles     []string
}

// ErrorEvent is an error restic reported and went on: a file it could not
// read or restore, or one finding of check. Check's explanatory paragraphs
// ("The repository contains damaged pack files…") also arrive this way.
type ErrorEvent struct {
	Message string
	During  string // "scan", "archival", "restore"; empty for check
	Item    string // the file concerned, when there is one
}

// ExitError is restic's last word before a non-zero exit.
type ExitError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Initialized is printed by "init".
type Initialized struct {
	ID         string `json:"id"`
	Repository string `json:"repository"`
}

// VersionInfo is printed by "version".
type VersionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	GoOS      string `json:"go_os"`
	GoArch    string `json:"go_arch"`
}

// BackupSummary is the last event of a successful backup.
type BackupSummary struct {
	SnapshotID          string    `json:"snapshot_id"`
	FilesNew            uint64    `json:"files_new"`
	FilesChanged        uint64    `json:"files_changed"`
	FilesUnmodified     uint64    `json:"files_unmodified"`
	DirsNew             uint64    `json:"dirs_new"`
	DirsChanged         uint64    `json:"dirs_changed"`
	DirsUnmodified      uint64    `json:"dirs_unmodified"`
	DataBlobs           int64     `json:"data_blobs"`
	TreeBlobs           int64     `json:"tree_blobs"`
	DataAdded           uint64    `json:"data_added"`
	DataAddedPacked     uint64    `json:"data_added_packed"`
	TotalFilesProcessed uint64    `json:"total_files_processed"`
	TotalBytesProcessed uint64    `json:"total_bytes_processed"`
	TotalDuration       float64   `json:"total_duration"` // seconds
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
	DryRun              bool      `json:"dry_run"`
}

// RestoreSummary is printed by restore after the files are written and
// before --verify runs. restic omits zero counters.
type RestoreSummary struct {
	SecondsElapsed uint64 `json:"seconds_elapsed"`
	TotalFiles     uint64 `json:"total_files"`
	FilesRestored  uint64 `json:"files_restored"`
	FilesSkipped   uint64 `json:"files_skipped"`
	FilesDeleted   uint64 `json:"files_deleted"`
	TotalBytes     uint64 `json:"total_bytes"`
	BytesRestored  uint64 `json:"bytes_restored"`
	BytesSkipped   uint64 `json:"bytes_skipped"`
}

// CheckSummary is the last event of check, printed whether or not it found
// errors (and, with num_errors 1, when it could not even open the repository).
type CheckSummary struct {
	NumErrors          int      `json:"num_errors"`
	BrokenPacks        []string `json:"broken_packs"`
	SuggestRepairIndex bool     `json:"suggest_repair_index"`
	SuggestPrune       bool     `json:"suggest_prune"`
}

// VerboseStatus is a per-item line printed with --verbose.
type VerboseStatus struct {
	Action string `json:"action"`
	Item   string `json:"item"`
	Size   uint64 `json:"size"`
}

// Snapshot is one snapshot as listed by "snapshots" or at the head of "ls".
type Snapshot struct {
	ID             string           `json:"id"`
	Time           time.Time        `json:"time"`
	Parent         string           `json:"parent,omitempty"`
	Tree           string           `json:"tree"`
	Paths          []string         `json:"paths"`
	Hostname       string           `json:"hostname,omitempty"`
	Username       string           `json:"username,omitempty"`
	Tags           []string         `json:"tags,omitempty"`
	ProgramVersion string           `json:"program_version,omitempty"`
	Summary        *SnapshotSummary `json:"summary,omitempty"`
}

// SnapshotSummary is the backup summary stored in a snapshot by restic ≥ 0.17.
type SnapshotSummary struct {
	BackupStart         time.Time `json:"backup_start"`
	BackupEnd           time.Time `json:"backup_end"`
	FilesNew            uint64    `json:"files_new"`
	FilesChanged        uint64    `json:"files_changed"`
	FilesUnmodified     uint64    `json:"files_unmodified"`
	DirsNew             uint64    `json:"dirs_new"`
	DirsChanged         uint64    `json:"dirs_changed"`
	DirsUnmodified      uint64    `json:"dirs_unmodified"`
	DataBlobs           int64     `json:"data_blobs"`
	TreeBlobs           int64     `json:"tree_blobs"`
	DataAdded           uint64    `json:"data_added"`
	DataAddedPacked     uint64    `json:"data_added_packed"`
	TotalFilesProcessed uint64    `json:"total_files_processed"`
	TotalBytesProcessed uint64    `json:"total_bytes_processed"`
}

// Node is one entry listed by "ls".
type Node struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"` // "file", "dir", "symlink", …
	Path        string    `json:"path"` // absolute within the snapshot, e.g. "/src/a.txt"
	UID         uint32    `json:"uid"`
	GID         uint32    `json:"gid"`
	Size        uint64    `json:"size"` // files only
	Mode        uint32    `json:"mode"`
	Permissions string    `json:"permissions"`
	ModTime     time.Time `json:"mtime"`
	Inode       uint64    `json:"inode"`
}

func (*Text) isEvent()           {}
func (*RawJSON) isEvent()        {}
func (*Unknown) isEvent()        {}
func (*Progress) isEvent()       {}
func (*ErrorEvent) isEvent()     {}
func (*ExitError) isEvent()      {}
func (*Initialized) isEvent()    {}
func (*VersionInfo) isEvent()    {}
func (*BackupSummary) isEvent()  {}
func (*RestoreSummary) isEvent() {}
func (*CheckSummary) isEvent()   {}
func (*VerboseStatus) isEvent()  {}
func (*Snapshot) isEvent()       {}
func (*Node) isEvent()           {}

// statusWire is the union of backup's and restore's status lines.
type statusWire struct {
	SecondsElapsed   uint64   `json:"seconds_elapsed"`
	SecondsRemaining uint64   `json:"seconds_remaining"`
	PercentDone      float64  `json:"percent_done"`
	TotalFiles       uint64   `json:"total_files"`
	FilesDone        uint64   `json:"files_done"`
	FilesRestored    uint64   `json:"files_restored"`
	FilesSkipped     uint64   `json:"files_skipped"`
	TotalBytes       uint64   `json:"total_bytes"`
	BytesDone        uint64   `json:"bytes_done"`
	BytesRestored    uint64   `json:"bytes_restored"`
	BytesSkipped     uint64   `json:"bytes_skipped"`
	ErrorCount       uint64   `json:"error_count"`
	CurrentFiles     []string `json:"current_files"`
}

// errorWire is the union of check's and backup/restore's error lines.
type errorWire struct {
	Message string `json:"message"`
	Error   struct {
		Message string `json:"message"`
	} `json:"error"`
	During string `json:"during"`
	Item   string `json:"item"`
}

// ParseLine parses one line printed by `restic --json <command>`, where
// command is the restic command as in [Error.Command] ("backup", "check",
// "key list", …): "summary" means something different for each. It never
// fails: a line that is not JSON is a [*Text], a JSON array is a [*RawJSON],
// and an object it does not recognise is an [*Unknown]. A trailing "\r" or
// "\n" is ignored.
func ParseLine(command string, line []byte) Event {
	line = bytes.TrimRight(line, "\r\n")
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') || !json.Valid(trimmed) {
		return &Text{Line: string(line)}
	}
	if trimmed[0] == '[' {
		return &RawJSON{Data: bytes.Clone(trimmed)}
	}
	var head struct {
		MessageType string `json:"message_type"`
	}
	if err := json.Unmarshal(trimmed, &head); err != nil {
		return &RawJSON{Data: bytes.Clone(trimmed)}
	}
	if head.MessageType == "" {
		return &RawJSON{Data: bytes.Clone(trimmed)}
	}
	if ev := parseTyped(command, head.MessageType, trimmed); ev != nil {
		return ev
	}
	return &Unknown{MessageType: head.MessageType, Data: bytes.Clone(trimmed)}
}

// parseTyped decodes a known message_type; nil means unknown or undecodable.
func parseTyped(command, messageType string, data []byte) Event {
	decode := func(v Event) Event {
		if json.Unmarshal(data, v) != nil {
			return nil
		}
		return v
	}
	switch messageType {
	case "status":
		var w statusWire
		if json.Unmarshal(data, &w) != nil {
			return nil
		}
		return &Progress{
			Command:          command,
			SecondsElapsed:   w.SecondsElapsed,
			SecondsRemaining: w.SecondsRemaining,
			PercentDone:      w.PercentDone,
			TotalFiles:       w.TotalFiles,
			FilesDone:        max(w.FilesDone, w.FilesRestored),
			FilesSkipped:     w.FilesSkipped,
			TotalBytes:       w.TotalBytes,
			BytesDone:        max(w.BytesDone, w.BytesRestored),
			BytesSkipped:     w.BytesSkipped,
			ErrorCount:       w.ErrorCount,
			CurrentFiles:     w.CurrentFiles,
		}
	case "error":
		var w errorWire
		if json.Unmarshal(data, &w) != nil {
			return nil
		}
		return &ErrorEvent{Message: cmp.Or(w.Error.Message, w.Message), During: w.During, Item: w.Item}
	case "exit_error":
		return decode(&ExitError{})
	case "initialized":
		return decode(&Initialized{})
	case "version":
		return decode(&VersionInfo{})
	case "verbose_status":
		return decode(&VerboseStatus{})
	case "snapshot":
		return decode(&Snapshot{})
	case "node":
		return decode(&Node{})
	case "summary":
		switch command {
		case "backup":
			return decode(&BackupSummary{})
		case "restore":
			return decode(&RestoreSummary{})
		case "check":
			return decode(&CheckSummary{})
		}
	}
	return nil
}

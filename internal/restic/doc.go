// Package restic owns the restic binary: it is the only code in Archipelago
// that executes restic, and it turns restic's JSON output and exit codes into
// typed Go values and sentinel errors.
//
// What it owns:
//   - finding the binary ([Find]) and refusing any version but the
//     [SupportedSeries] ([New]);
//   - building the child's argv (never a secret in it) and its environment
//     (the repository password and S3 keys, and nothing inherited from the
//     parent's RESTIC_* or AWS_* variables);
//   - reading stdout and stderr line by line to the end, parsing JSON events
//     ([ParseLine]), keeping a capped tail of everything else for errors;
//   - stopping restic gracefully: SIGINT to its process group when the
//     context ends, SIGKILL after a grace period, so that it removes its locks;
//   - classifying failures ([Classify]) so that callers can tell "the
//     repository is damaged" from "we could not do the check".
//
// What it must not do: decide policy (which snapshot to test, how often, what
// a result means for a member), talk to S3 or the database directly, log
// secrets, or pipe restic's output into anything that can stop reading early
// (a restic killed by SIGPIPE leaves a stale lock behind).
package restic

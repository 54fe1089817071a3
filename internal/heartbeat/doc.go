// Package heartbeat owns the worker's liveness signal: `archipelago worker` writes the time
// to a small file while it is healthy (its database answers), and `archipelago healthcheck
// worker` reads it. A file, not a listener: a worker serves no HTTP, and the image has no
// shell, so the check is the binary itself reading what the worker wrote in the same
// container. It must not decide anything else: the file says "alive at", nothing more.
package heartbeat

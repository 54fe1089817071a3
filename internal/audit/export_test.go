package audit

import "time"

// SetAppenderClock gives a the clock now (tests: a process's clock behind the database's).
func SetAppenderClock(a *Appender, now func() time.Time) { a.now = now }

// AppenderMissed says how many of a's predictions were not the log's head.
func AppenderMissed(a *Appender) int64 { return a.missed.Load() }

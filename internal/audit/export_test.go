package audit

import "time"

// SetAppenderClock gives a the clock now (tests: a process's clock behind the database's).
func SetAppenderClock(a *Appender, now func() time.Time) { a.now = now }

//go:build unix

package natsjs_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process (the embedded server included)
// has used so far, user and system; ok is false where it cannot be read.
func processCPU() (cpu time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

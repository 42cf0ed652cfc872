// Package impure breaks every purity rule on purpose; the purity test
// checks that each break is reported.
package impure

import (
	"os"
	"time"
)

// Bad does everything a machine must not.
func Bad() {
	go func() {}()
	_ = time.Now()
	time.Sleep(time.Millisecond)
	<-time.After(time.Millisecond)
	_ = os.Getpid()
}

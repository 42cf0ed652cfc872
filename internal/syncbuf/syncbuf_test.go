package syncbuf

import (
	"strings"
	"testing"
	"time"
)

func TestWaitForSeesLaterWrites(t *testing.T) {
	var b Buffer
	go func() {
		for _, s := range []string{"one ", "two ", "three"} {
			b.Write([]byte(s))
		}
	}()
	got, ok := b.WaitFor(func(s string) bool { return strings.HasSuffix(s, "three") }, 10*time.Second)
	if !ok || got != "one two three" {
		t.Fatalf("WaitFor = %q, %v; want all three writes", got, ok)
	}
	if got, ok := b.WaitFor(func(s string) bool { return strings.Contains(s, "four") }, 10*time.Millisecond); ok {
		t.Fatalf("WaitFor = %q, true for something never written", got)
	}
}

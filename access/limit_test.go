package access

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	c := newClock()
	l := &Limiter{Rate: 2, Burst: 3, Now: c.now}
	for i, step := range []struct {
		advance time.Duration
		key     string
		ok      bool
		wait    time.Duration
	}{
		// The burst, then refusals until a token is back.
		{0, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", false, 500 * time.Millisecond},
		{0, "a", false, 500 * time.Millisecond},
		// Other keys have their own buckets.
		{0, "b", true, 0},
		{0, "b", true, 0},
		{0, "b", true, 0},
		{0, "b", false, 500 * time.Millisecond},
		{0, "", true, 0},
		// Refilled at Rate.
		{250 * time.Millisecond, "a", false, 250 * time.Millisecond},
		{250 * time.Millisecond, "a", true, 0},
		{0, "a", false, 500 * time.Millisecond},
		{time.Second, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", false, 500 * time.Millisecond},
		// Up to Burst, not beyond.
		{time.Hour, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", true, 0},
		{0, "a", false, 500 * time.Millisecond},
		{0, "b", true, 0},
	} {
		c.advance(step.advance)
		ok, wait := l.Allow(step.key)
		if ok != step.ok || wait != step.wait {
			t.Errorf("step %d: Allow(%q) = %v, %v; want %v, %v", i, step.key, ok, wait, step.ok, step.wait)
		}
		if !ok && wait <= 0 {
			t.Errorf("step %d: refused with wait %v; want a positive wait", i, wait)
		}
	}
}

func TestLimiterSlowRate(t *testing.T) {
	c := newClock()
	l := &Limiter{Rate: 0.5, Burst: 1, Now: c.now}
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("the first request was refused")
	}
	if ok, wait := l.Allow("k"); ok || wait != 2*time.Second {
		t.Errorf("the second at once: %v, %v; want refused for 2s", ok, wait)
	}
	c.advance(1500 * time.Millisecond)
	if ok, wait := l.Allow("k"); ok || wait != 500*time.Millisecond {
		t.Errorf("1.5s later: %v, %v; want refused for 0.5s", ok, wait)
	}
	c.advance(500 * time.Millisecond)
	if ok, wait := l.Allow("k"); !ok || wait != 0 {
		t.Errorf("2s later: %v, %v; want allowed", ok, wait)
	}
}

// The buckets of keys gone quiet are forgotten, and forgetting them
// changes nothing: a forgotten bucket was full.
func TestLimiterForgets(t *testing.T) {
	c := newClock()
	l := &Limiter{Rate: 1, Burst: 2, Now: c.now}
	for i := range 1000 {
		l.Allow(fmt.Sprint("addr ", i))
	}
	l.Allow("busy")
	l.Allow("busy")
	c.advance(time.Minute)
	if ok, _ := l.Allow("busy"); !ok {
		t.Fatal("a refilled bucket refused")
	}
	if n := len(l.buckets); n != 1 {
		t.Errorf("%d buckets kept after a quiet minute, want only the busy one", n)
	}
	if ok, _ := l.Allow("addr 1"); !ok {
		t.Error("a forgotten key was refused")
	}
	if ok, _ := l.Allow("addr 1"); !ok {
		t.Error("a forgotten key has less than its burst")
	}
	if ok, _ := l.Allow("addr 1"); ok {
		t.Error("a forgotten key has more than its burst")
	}
}

func TestLockout(t *testing.T) {
	c := newClock()
	l := &Lockout{Max: 3, Window: 10 * time.Minute, Lock: 15 * time.Minute, Now: c.now}
	check := func(step string, key string, locked bool, left time.Duration) {
		t.Helper()
		gotLocked, gotLeft := l.Locked(key)
		if gotLocked != locked || gotLeft != left {
			t.Errorf("%s: Locked(%q) = %v, %v; want %v, %v", step, key, gotLocked, gotLeft, locked, left)
		}
	}
	check("never failed", "alice", false, 0)
	for i := 1; i <= 3; i++ {
		if got := l.Failed("alice"); got != (i == 3) {
			t.Errorf("failure %d: Failed = %v, want %v", i, got, i == 3)
		}
		if i < 3 {
			check(fmt.Sprint("after ", i, " failures"), "alice", false, 0)
		}
		c.advance(time.Minute)
	}
	// Locked a minute ago.
	check("locked", "alice", true, 14*time.Minute)
	check("another key", "bob", false, 0)
	c.advance(14*time.Minute - time.Nanosecond)
	check("a moment before the lock ends", "alice", true, time.Nanosecond)
	c.advance(time.Nanosecond)
	check("when the lock ends", "alice", false, 0)
	// Counted afresh.
	l.Failed("alice")
	l.Failed("alice")
	check("two failures after the lock", "alice", false, 0)
	if !l.Failed("alice") {
		t.Error("the third failure after the lock did not lock")
	}
	check("locked again", "alice", true, 15*time.Minute)
}

func TestLockoutWindow(t *testing.T) {
	c := newClock()
	l := &Lockout{Max: 3, Window: 10 * time.Minute, Lock: 5 * time.Minute, Now: c.now}
	l.Failed("k")
	l.Failed("k")
	c.advance(10*time.Minute + time.Second)
	// The two failures are out of the window: this is the first of a
	// new one.
	if l.Failed("k") {
		t.Error("a failure after the window locked, counting failures before it")
	}
	if l.Failed("k") {
		t.Error("the second failure in the window locked")
	}
	if locked, _ := l.Locked("k"); locked {
		t.Error("locked after two failures in the window")
	}
	c.advance(10 * time.Minute) // the window's last instant
	if !l.Failed("k") {
		t.Error("three failures within the window did not lock")
	}
	if locked, left := l.Locked("k"); !locked || left != 5*time.Minute {
		t.Errorf("Locked = %v, %v; want locked for 5m", locked, left)
	}
}

func TestLockoutSucceeded(t *testing.T) {
	c := newClock()
	l := &Lockout{Max: 3, Window: 10 * time.Minute, Lock: 15 * time.Minute, Now: c.now}
	l.Succeeded("never failed") // harmless
	l.Failed("alice")
	l.Failed("alice")
	l.Failed("bob")
	l.Failed("bob")
	l.Succeeded("alice")
	first := l.Failed("alice")
	if second := l.Failed("alice"); first || second {
		t.Error("failures before a success still count")
	}
	if !l.Failed("bob") {
		t.Error("another key's success cleared bob's failures")
	}
	if locked, _ := l.Locked("alice"); locked {
		t.Error("alice is locked after two failures since a success")
	}
	if locked, _ := l.Locked("bob"); !locked {
		t.Error("bob is not locked")
	}
}

// A failure recorded while a key is locked must not lift the lock. The
// web server's lockout of bad authentications locks for longer (15
// minutes) than it counts failures (10 minutes); a failure recorded
// between the two, by a request that passed its Locked check before
// the lock began, or by a caller that records failures without asking
// Locked first, starts a fresh count, and the fresh count has no lock.
func TestLockoutFailureWhileLocked(t *testing.T) {
	c := newClock()
	l := &Lockout{Max: 3, Window: 10 * time.Minute, Lock: 15 * time.Minute, Now: c.now}
	for range 3 {
		l.Failed("k")
	}
	c.advance(11 * time.Minute)
	if locked, left := l.Locked("k"); !locked || left != 4*time.Minute {
		t.Fatalf("Locked = %v, %v; want locked for 4m more", locked, left)
	}
	l.Failed("k")
	if locked, left := l.Locked("k"); !locked {
		t.Errorf("a failure 11 minutes into a 15-minute lock unlocked the key (Locked = %v, %v); want locked for 4m more", locked, left)
	}
}

package access

import (
	"sync"
	"time"
)

// A Limiter bounds how often each key (a token, an address) may act: a
// token bucket per key, refilled at Rate per second up to Burst.
// Buckets of keys unseen for a while are forgotten.
type Limiter struct {
	Rate  float64
	Burst int
	Now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Allow takes a token from key's bucket. When there is none it returns
// false and how long until there is.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[string]*bucket)
	}
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(l.Burst), at: now}
		l.buckets[key] = b
	}
	b.tokens = min(float64(l.Burst), b.tokens+now.Sub(b.at).Seconds()*l.Rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
}

// sweep forgets full buckets, once a minute.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	full := time.Duration(float64(l.Burst) / l.Rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.at) > full {
			delete(l.buckets, k)
		}
	}
}

func (l *Limiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// A Lockout refuses a key (a login name, an address) for Lock after Max
// failures within Window: the brute-force protection of logins.
type Lockout struct {
	Max    int
	Window time.Duration
	Lock   time.Duration
	Now    func() time.Time

	mu    sync.Mutex
	keys  map[string]*failures
	swept time.Time
}

type failures struct {
	n      int
	first  time.Time
	locked time.Time // until
}

// Locked reports whether key is locked out, and for how long still.
func (l *Lockout) Locked(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.keys[key]
	if f == nil || !now.Before(f.locked) {
		return false, 0
	}
	return true, f.locked.Sub(now)
}

// Failed records a failure of key; it reports whether key is now locked.
func (l *Lockout) Failed(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = make(map[string]*failures)
	}
	if now.Sub(l.swept) >= time.Minute {
		l.swept = now
		for k, f := range l.keys {
			if now.Sub(f.first) > l.Window && !now.Before(f.locked) {
				delete(l.keys, k)
			}
		}
	}
	f := l.keys[key]
	if f == nil || now.Sub(f.first) > l.Window && !now.Before(f.locked) {
		f = &failures{first: now}
		l.keys[key] = f
	}
	f.n++
	if f.n >= l.Max {
		f.locked = now.Add(l.Lock)
		f.n, f.first = 0, now
		return true
	}
	return false
}

// Succeeded forgets key's failures.
func (l *Lockout) Succeeded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

func (l *Lockout) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

const (
	crashDirEnv = "VIGIL_LEDGER_CRASH_DIR"
	crashKeyEnv = "VIGIL_LEDGER_CRASH_KEY"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, os.Getenv(crashKeyEnv))
		return
	}
	os.Exit(m.Run())
}

// crashChild appends from a few goroutines until it is killed, printing
// "first count id" for every acknowledged batch: records first..first+
// count-1 hold testEvent(id), testEvent(id+1), …
func crashChild(dir, key string) {
	s, _, _, err := LoadOrCreateKey(key, "vigil-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := Open(dir, Options{SegmentBytes: 32 << 10, Signer: s, CheckpointEvery: 3 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := range 4 {
		go func() {
			id := int(time.Now().UnixNano()%1e6)*100 + g*1e6
			for {
				n := 1 + rand.IntN(8)
				first, err := l.Append(context.Background(), events(id, n))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "%d %d %d\n", first, n, id)
				mu.Unlock()
				id += n
			}
		}()
	}
	select {}
}

func TestCrash(t *testing.T) {
	iterations := 25
	if testing.Short() {
		iterations = 5
	}
	dir := filepath.Join(t.TempDir(), "ledger")
	key := filepath.Join(t.TempDir(), "ledger.key")
	_, v, _, err := LoadOrCreateKey(key, "vigil-test")
	if err != nil {
		t.Fatal(err)
	}
	type ack struct{ first, n, id int64 }
	var acks []ack
	seen := map[string]Checkpoint{}
	recovered := 0
	for it := range iterations {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashKeyEnv+"="+key)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan []string)
		go func() {
			var got []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				got = append(got, sc.Text())
			}
			lines <- got
		}()
		time.Sleep(time.Duration(30+rand.IntN(150)) * time.Millisecond)
		cmd.Process.Kill()
		got := <-lines
		cmd.Wait()
		if bytes.Contains(stderr.Bytes(), []byte("ledger")) {
			t.Fatalf("iteration %d: child failed: %s", it, stderr.Bytes())
		}
		for _, line := range got {
			var a ack
			if _, err := fmt.Sscanf(line, "%d %d %d", &a.first, &a.n, &a.id); err != nil {
				t.Fatalf("child printed %q", line)
			}
			acks = append(acks, a)
		}

		// A kill seldom lands inside write(2); half the time, leave what
		// one that did would: the start of the next frame.
		torn := int64(0)
		if it%2 == 1 {
			firsts, _ := listSegments(dir)
			content := EncodeEvent(testEvent(it))
			frame := appendFrame(nil, KindEvent, true, 1<<40, sha256.Sum256(content), content)
			torn = 1 + rand.Int64N(int64(len(frame)-1))
			f, err := os.OpenFile(filepath.Join(dir, segName(firsts[len(firsts)-1])), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(frame[:torn])
			f.Close()
		}
		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("iteration %d: reopen after kill: %v", it, err)
		}
		if r := l.Recovery(); r.BytesTruncated > 0 {
			recovered++
			if r.BytesTruncated < torn {
				t.Errorf("iteration %d: cut %d bytes, want the %d torn ones", it, r.BytesTruncated, torn)
			}
		} else if torn > 0 {
			t.Errorf("iteration %d: torn frame not cut", it)
		}
		for _, a := range acks {
			if a.first+a.n > l.Size() {
				t.Fatalf("iteration %d: acknowledged records %d..%d lost (size %d)", it, a.first, a.first+a.n-1, l.Size())
			}
			for i := range a.n {
				rec, err := l.Read(a.first + i)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(rec.Content, EncodeEvent(testEvent(int(a.id+i)))) {
					t.Fatalf("iteration %d: record %d does not hold what was acknowledged", it, a.first+i)
				}
			}
		}
		// Every checkpoint ever written, in this run or earlier ones, is
		// a prefix of the tree now.
		ents, _ := os.ReadDir(filepath.Join(dir, checkpointDir))
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join(dir, checkpointDir, e.Name())); err == nil && e.Name() != latestName {
				c, err := ParseCheckpoint(b, v)
				if err != nil {
					t.Fatalf("checkpoint %s: %v", e.Name(), err)
				}
				seen[e.Name()] = c
			}
		}
		root, _ := l.RootHash(l.Size())
		for name, c := range seen {
			if c.Size == 0 {
				continue
			}
			p, err := l.ConsistencyProof(c.Size, l.Size())
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(p, l.Size(), root, c.Size, c.Hash); err != nil {
				t.Fatalf("iteration %d: checkpoint %s is not a prefix of the tree: %v", it, name, err)
			}
		}
		l.Close()
	}
	rep, err := Verify(context.Background(), dir, VerifyOptions{Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify after %d crashes: %v", iterations, rep.Problems)
	}
	t.Logf("%d kills, %d acknowledged batches, %d records, %d checkpoints, %d torn tails cut", iterations, len(acks), rep.Size, len(seen), recovered)
}

// Package bustest runs NATS JetStream clusters for tests: nats-server
// embedded in the test's process, each node on loopback ports of its own
// with its store in the test's temp dir, clustered over routes as a real
// deployment is. A node can be killed and started again on its store.
package bustest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/vigilsec/vigil/bus"
)

// TB is what a cluster needs of its caller: a test's testing.TB, or a
// benchmark command's stand-in for one.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Errorf(format string, args ...any)
	Fatal(args ...any)
}

// A Cluster is n nats-servers forming one JetStream cluster.
type Cluster struct {
	Nodes []*Node
	t     TB
}

// A Node is one server of a Cluster.
type Node struct {
	opts *server.Options
	srv  *server.Server
}

// MaxPayload is the largest message the servers take: 8 MiB, as a
// deployment that carries batches of events configures (the default is
// 1 MiB).
const MaxPayload = 8 << 20

// Start starts n servers as one JetStream cluster and waits until it has
// a leader. The servers stop when the test ends.
func Start(t TB, n int) *Cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	routes := make([]*url.URL, n)
	for i := range n {
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])}
	}
	c := &Cluster{t: t}
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[2*i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			MaxPayload: MaxPayload,
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "vigil",
				Host: "127.0.0.1",
				Port: ports[2*i+1],
			},
			Routes: routes,
		}
		c.Nodes = append(c.Nodes, &Node{opts: opts})
	}
	for _, nd := range c.Nodes {
		if err := nd.start(); err != nil {
			c.Stop()
			t.Fatal(err)
		}
	}
	t.Cleanup(c.Stop)
	c.WaitReady()
	return c
}

// URL is the client URL of every node, as a client configures it: it
// reconnects to another when one goes away.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		urls[i] = nd.URL()
	}
	return strings.Join(urls, ",")
}

// Connect connects a client to the cluster, closed when the test ends.
func (c *Cluster) Connect() *nats.Conn {
	c.t.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// WaitReady waits until the running nodes have elected a JetStream meta
// leader and the leader counts every running node as a peer: before
// that, a stream of three replicas finds no place (on a busy machine
// the last node may take seconds to report).
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		running := 0
		var leader *server.Server
		for _, nd := range c.Nodes {
			if nd.srv != nil && nd.srv.Running() {
				running++
				if nd.srv.JetStreamIsLeader() {
					leader = nd.srv
				}
			}
		}
		if leader != nil && len(leader.JetStreamClusterPeers()) >= running {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("the JetStream cluster did not elect a leader with every node as a peer in 30s")
}

// Unread is how many messages of the topics' partitions their durable
// consumers have not had acknowledged. A partition whose consumer cannot
// be asked (it is being made anew) counts one, so that 0 means every
// partition was read.
func Unread(ctx context.Context, topics ...*bus.Topic) uint64 {
	var n uint64
	for _, t := range topics {
		for p := range t.Partitions() {
			lag, err := t.Lag(ctx, p)
			if err != nil {
				lag = 1
			}
			n += lag
		}
	}
	return n
}

// Stop shuts every node down.
func (c *Cluster) Stop() {
	for _, nd := range c.Nodes {
		nd.Kill()
	}
}

// URL is the node's client URL.
func (nd *Node) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", nd.opts.Port) }

// Kill shuts the node down at once, as a crash of its machine would: its
// clients are cut off and the cluster goes on without it.
func (nd *Node) Kill() {
	if nd.srv != nil {
		nd.srv.Shutdown()
		nd.srv.WaitForShutdown()
		nd.srv = nil
	}
}

// Restart starts a killed node again on its store, on the same ports.
func (nd *Node) Restart() error {
	if nd.srv != nil {
		return fmt.Errorf("node %s is running", nd.opts.ServerName)
	}
	return nd.start()
}

func (nd *Node) start() error {
	srv, err := server.NewServer(nd.opts)
	if err != nil {
		return fmt.Errorf("node %s: %w", nd.opts.ServerName, err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("node %s: not ready for connections in 10s", nd.opts.ServerName)
	}
	nd.srv = srv
	return nil
}

// freePorts returns n distinct free loopback ports, held until all are
// chosen.
func freePorts(t TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	held := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range held {
		l.Close()
	}
	return ports
}

package testparts

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a NATS cluster of nats-servers running in the test process,
// each with JetStream, its own store under t.TempDir(), a server name and
// fixed loopback ports, so that a stopped node restarts as the same peer with
// the same data. Its methods are safe for concurrent use.
type Cluster struct {
	name  string
	mu    sync.Mutex
	nodes []*clusterNode
}

type clusterNode struct {
	name        string
	dir         string
	port        int // client port
	clusterPort int
	srv         *server.Server // nil while stopped
}

// NATSCluster starts an n-node cluster and returns once it is ready
// (WaitJetStream) and its route connections have settled. The nodes are
// shut down at cleanup.
func NATSCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &Cluster{name: "s1bridge-test"}
	for i := range n {
		c.nodes = append(c.nodes, &clusterNode{
			name: fmt.Sprintf("n%d", i), dir: t.TempDir(), port: ports[2*i], clusterPort: ports[2*i+1],
		})
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Stop(i)
		}
	})
	// Start them together: JetStream bootstraps its meta group from the
	// configured routes, and the first election needs a majority up.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range c.nodes {
		wg.Go(func() { errs[i] = c.start(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c.WaitJetStream(t, 30*time.Second)
	c.waitRoutesQuiet(t, 30*time.Second)
	return c
}

// routesQuiet is how long the route connections must stay the same before
// NATSCluster returns.
const routesQuiet = 1500 * time.Millisecond

// waitRoutesQuiet waits until no route connection opened or closed for
// routesQuiet. Nodes started together dial each other before all listen;
// the failed dials are retried about every second, and the connections
// they then make are closed as duplicates, sometimes replacing a route of
// the pool: a message routed at that moment (a JetStream API reply) is lost.
// That settles within a few seconds.
func (c *Cluster) waitRoutesQuiet(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last, since := "", time.Now()
	for {
		var conns []string
		for _, s := range c.running() {
			rz, err := s.Routez(&server.RoutezOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rz.Routes {
				conns = append(conns, fmt.Sprintf("%s:%d", s.Name(), r.Rid))
			}
		}
		slices.Sort(conns) // Routez lists them in no set order
		if cur := strings.Join(conns, " "); cur != last {
			last, since = cur, time.Now()
		}
		if time.Since(since) >= routesQuiet {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("routes still changing after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago
// (all held at once, so they differ), below 32768: outside the ephemeral
// ranges of Linux (32768-60999) and macOS (49152-65535), so that no
// outgoing connection (a route being dialled) takes one before its node
// listens on it. A port taken so makes a node unreachable, and the cluster
// misbehaves in ways that look like anything but a port clash.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	const lo, hi = 10000, 32768
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			t.Fatalf("no %d free loopback ports in %d-%d", n, lo, hi-1)
		}
		p := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // taken
		}
		ls = append(ls, l)
		ports = append(ports, p)
	}
	return ports
}

func (c *Cluster) options(i int) *server.Options {
	nd := c.nodes[i]
	var routes []*url.URL
	for _, o := range c.nodes {
		// Every node lists every route, itself included (the server skips
		// it): JetStream sizes its first meta group from this list.
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", o.clusterPort)})
	}
	return &server.Options{
		ServerName: nd.name,
		Host:       "127.0.0.1",
		Port:       nd.port,
		JetStream:  true,
		StoreDir:   nd.dir,
		Cluster:    server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: nd.clusterPort},
		Routes:     routes,
		NoSigs:     true,
		NoLog:      os.Getenv("S1BRIDGE_TEST_LOG") == "",
		MaxPayload: 8 << 20,
	}
}

// nodeLog writes a node's log lines to stderr (not to the test's log: a
// server may still log after its test ended), each prefixed with its name.
type nodeLog string

func (l nodeLog) logf(level, format string, v ...any) {
	fmt.Fprintf(os.Stderr, "%s [%s] %s %s\n", time.Now().UTC().Format("15:04:05.000"), string(l), level, fmt.Sprintf(format, v...))
}
func (l nodeLog) Noticef(format string, v ...any) { l.logf("INF", format, v...) }
func (l nodeLog) Warnf(format string, v ...any)   { l.logf("WRN", format, v...) }
func (l nodeLog) Fatalf(format string, v ...any)  { l.logf("FTL", format, v...) }
func (l nodeLog) Errorf(format string, v ...any)  { l.logf("ERR", format, v...) }
func (l nodeLog) Debugf(format string, v ...any)  { l.logf("DBG", format, v...) }
func (l nodeLog) Tracef(format string, v ...any)  { l.logf("TRC", format, v...) }

func (c *Cluster) start(i int) error {
	s, err := server.NewServer(c.options(i))
	if err != nil {
		return fmt.Errorf("node %s: %w", c.nodes[i].name, err)
	}
	if os.Getenv("S1BRIDGE_TEST_LOG") != "" {
		s.SetLoggerV2(nodeLog(c.nodes[i].name), os.Getenv("S1BRIDGE_TEST_LOG") == "debug", false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("node %s did not start", c.nodes[i].name)
	}
	c.mu.Lock()
	c.nodes[i].srv = s
	c.mu.Unlock()
	return nil
}

// URL is the client URL of every node, comma-separated (stopped ones too:
// clients keep them in their server pool).
func (c *Cluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", nd.port)
	}
	return strings.Join(urls, ",")
}

// Len is the number of nodes, running or not.
func (c *Cluster) Len() int { return len(c.nodes) }

// Name is the server name of node i, as JetStream reports leaders and peers.
func (c *Cluster) Name(i int) string { return c.nodes[i].name }

// Index returns the node whose server name is name, or -1.
func (c *Cluster) Index(name string) int {
	for i, nd := range c.nodes {
		if nd.name == name {
			return i
		}
	}
	return -1
}

// Server returns node i's server, nil while it is stopped.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

func (c *Cluster) running() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*server.Server
	for _, nd := range c.nodes {
		if nd.srv != nil {
			out = append(out, nd.srv)
		}
	}
	return out
}

// Stop shuts node i down as nats-server does on SIGTERM (its Raft leaders
// step down first) and waits until it is gone. Stopping a stopped node does
// nothing.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts stopped node i again on its ports and store, and waits
// until it is part of the cluster again (WaitJetStream); its streams may
// still be catching up.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	if c.Server(i) != nil {
		t.Fatalf("node %s is running", c.nodes[i].name)
	}
	if err := c.start(i); err != nil {
		t.Fatal(err)
	}
	c.WaitJetStream(t, 30*time.Second)
}

// WaitJetStream waits until every running node has its full pool of routes
// to every other one, one node is the JetStream meta leader, every running
// node is current with it, and the leader sees every running node online,
// all of it for a few checks in a row. Before that, a reply may be dropped
// (a route of the pool still missing) or an R3 stream refused ("peer
// offline").
func (c *Cluster) WaitJetStream(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for good := 0; good < 5; time.Sleep(50 * time.Millisecond) {
		nodes := c.running()
		leaders, current, online, routed := 0, 0, 0, 0
		for _, s := range nodes {
			if s.JetStreamIsLeader() {
				leaders++
				online = len(s.JetStreamClusterPeers())
			}
			if s.JetStreamIsCurrent() {
				current++
			}
			if routesFormed(s, nodes) {
				routed++
			}
		}
		if leaders == 1 && current == len(nodes) && online == len(nodes) && routed == len(nodes) {
			good++
			continue
		}
		good = 0
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready after %s: %d of %d nodes with all their routes, %d meta leaders, %d nodes current, %d online",
				timeout, routed, len(nodes), leaders, current, online)
		}
	}
}

// routesFormed reports whether s has exactly the default pool of routes to
// every other node of nodes.
func routesFormed(s *server.Server, nodes []*server.Server) bool {
	rz, err := s.Routez(&server.RoutezOptions{})
	if err != nil {
		return false
	}
	pooled := map[string]int{}
	for _, r := range rz.Routes {
		if r.Account == "" { // not a route pinned to one account ($SYS)
			pooled[r.RemoteName]++
		}
	}
	for _, o := range nodes {
		if o != s && pooled[o.Name()] != server.DEFAULT_ROUTE_POOL_SIZE {
			return false
		}
	}
	return len(pooled) == len(nodes)-1
}

// StreamLeader returns the name of the running node that leads stream (of
// the default account) in its own view, or "" while none does (an
// election). Unlike a client's stream info request, it never waits.
func (c *Cluster) StreamLeader(stream string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.srv != nil && nd.srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return nd.name
		}
	}
	return ""
}

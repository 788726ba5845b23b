package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/connector/ce"
	"github.com/s1bridge/s1bridge/internal/testenv"
	"github.com/s1bridge/s1bridge/subjects"
)

const (
	natsConf    = "nats/nats-server.conf"
	composeFile = "nats/docker-compose.yaml"
	readmeFile  = "README.md"
)

// natsUser is a user of nats-server.conf with a fresh nkey pair; the file
// reads the public key from the environment variable env.
type natsUser struct {
	env  string
	seed []byte
	pub  string
}

// natsEnv sets every NATS_* variable nats-server.conf reads: a server name,
// and a fresh nkey per user, returned by user name (s1bridge, soar, ...).
func natsEnv(t *testing.T) map[string]natsUser {
	t.Helper()
	users := map[string]natsUser{}
	for _, v := range confVars(t) {
		if v == "NATS_SERVER_NAME" {
			t.Setenv(v, "nats-test")
			continue
		}
		name, ok := strings.CutPrefix(v, "NATS_USER_")
		name, ok2 := strings.CutSuffix(name, "_NKEY")
		if !ok || !ok2 {
			t.Fatalf("%s reads $%s: this test does not know what to put in it", natsConf, v)
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		t.Setenv(v, pub)
		users[strings.ToLower(name)] = natsUser{env: v, seed: seed, pub: pub}
	}
	return users
}

// confVars returns the environment variables nats-server.conf reads.
func confVars(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(natsConf)
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#") // the file has no # in strings
		for _, m := range regexp.MustCompile(`\$(NATS_[A-Z0-9_]+)`).FindAllStringSubmatch(line, -1) {
			vars = append(vars, m[1])
		}
	}
	slices.Sort(vars)
	return slices.Compact(vars)
}

// composeFileT is the part of docker-compose.yaml the tests read.
type composeFileT struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Secrets     []string          `yaml:"secrets"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

func TestNATSConfig(t *testing.T) {
	users := natsEnv(t)
	for _, u := range []string{"s1bridge", "soar", "ops", "sys"} {
		if _, ok := users[u]; !ok {
			t.Errorf("%s has no user %s", natsConf, u)
		}
	}

	m, err := conf.ParseFile(natsConf)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := m["jetstream"].(map[string]any)
	if js["store_dir"] == nil || js["max_file_store"] == nil {
		t.Errorf("jetstream block %v: want store_dir and max_file_store", js)
	}
	cl, _ := m["cluster"].(map[string]any)
	routes, _ := cl["routes"].([]any)
	if cl["name"] == nil || len(routes) != 3 {
		t.Fatalf("cluster block %v: want a name and three routes", cl)
	}
	var routeHosts []string
	for _, r := range routes {
		u, err := url.Parse(fmt.Sprint(r))
		if err != nil {
			t.Fatal(err)
		}
		routeHosts = append(routeHosts, u.Hostname())
	}

	// The server accepts it as a whole.
	opts, err := server.ProcessConfigFile(natsConf)
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || opts.ServerName != "nats-test" || opts.Cluster.Name == "" || len(opts.Routes) != 3 || opts.SystemAccount != "SYS" {
		t.Errorf("options: jetstream %v, server_name %q, cluster %q, %d routes, system account %q",
			opts.JetStream, opts.ServerName, opts.Cluster.Name, len(opts.Routes), opts.SystemAccount)
	}

	// The README's nsc command grants s1bridge the same as the file.
	pub, sub, resp := permissions(t, m, "S1BRIDGE_PERMISSIONS")
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := regexp.MustCompile(`(?s)nsc add user --account \S+ --name s1bridge(.*?)\n[^\n]*[^\\]\n`).FindSubmatch(readme)
	if cmd == nil {
		t.Fatalf("%s has no nsc command for the s1bridge user", readmeFile)
	}
	var nscPub, nscSub []string
	for _, f := range regexp.MustCompile(`--allow-(pub|sub) '([^']*)'`).FindAllSubmatch(cmd[0], -1) {
		list := strings.Split(string(f[2]), ",")
		if string(f[1]) == "pub" {
			nscPub = append(nscPub, list...)
		} else {
			nscSub = append(nscSub, list...)
		}
	}
	slices.Sort(nscPub)
	slices.Sort(nscSub)
	if !slices.Equal(nscPub, pub) || !slices.Equal(nscSub, sub) {
		t.Errorf("%s: nsc grants publish %q and subscribe %q;\n%s grants publish %q and subscribe %q", readmeFile, nscPub, nscSub, natsConf, pub, sub)
	}
	if want := fmt.Sprintf("--allow-pub-response=%v --response-ttl %v", resp["max"], resp["expires"]); !bytes.Contains(cmd[0], []byte(want)) {
		t.Errorf("%s: the nsc command lacks %s", readmeFile, want)
	}

	// docker-compose.yaml runs one node per route, each with what the file reads.
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFileT
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	serverVersion := moduleVersion(t, "github.com/nats-io/nats-server/v2")
	var nodes []string
	for name, s := range c.Services {
		if !strings.HasPrefix(s.Image, "nats:") {
			continue
		}
		nodes = append(nodes, name)
		// The example runs the server these tests ran against.
		if !strings.HasPrefix(s.Image, "nats:"+strings.TrimPrefix(serverVersion, "v")) {
			t.Errorf("%s: image %s, want the tested server %s", name, s.Image, serverVersion)
		}
		for _, v := range confVars(t) {
			if s.Environment[v] == "" {
				t.Errorf("%s: no %s in its environment", name, v)
			}
		}
		if s.Environment["NATS_SERVER_NAME"] != name {
			t.Errorf("%s: NATS_SERVER_NAME %q, want the service's name (the routes name it)", name, s.Environment["NATS_SERVER_NAME"])
		}
		i := slices.Index(s.Command, "--config")
		if i < 0 || i+1 >= len(s.Command) || !slices.Contains(s.Volumes, "./nats-server.conf:"+s.Command[i+1]+":ro") {
			t.Errorf("%s: command %q does not read the mounted nats-server.conf (volumes %q)", name, s.Command, s.Volumes)
		}
	}
	slices.Sort(nodes)
	slices.Sort(routeHosts)
	if !slices.Equal(nodes, routeHosts) {
		t.Errorf("%s runs %q, the routes name %q", composeFile, nodes, routeHosts)
	}

	// Its s1bridge service has a valid configuration, for the cluster above.
	s, ok := c.Services["s1bridge"]
	if !ok {
		t.Fatalf("%s has no s1bridge service", composeFile)
	}
	if len(s.Command) != 3 || s.Command[0] != "run" || s.Command[1] != "--config" || s.Command[2] != "" {
		t.Errorf("s1bridge command %q, want run with no configuration file", s.Command)
	}
	var environ []string
	for k, v := range s.Environment {
		if k == "S1BRIDGE_NATS__NKEY_FILE" {
			if _, ok := c.Secrets[strings.TrimPrefix(v, "/run/secrets/")]; !ok || !slices.Contains(s.Secrets, filepath.Base(v)) {
				t.Errorf("%s=%s is not a secret of the service", k, v)
			}
			v = secretFile(t, "s1bridge.nk", string(users["s1bridge"].seed))
		}
		environ = append(environ, k+"="+v)
	}
	cfg, err := config.LoadWith(config.Options{Environ: environ})
	if err != nil {
		t.Fatalf("s1bridge's environment in %s: %v", composeFile, err)
	}
	for _, u := range strings.Split(cfg.NATS.URL, ",") {
		pu, err := url.Parse(u)
		if err != nil || !slices.Contains(nodes, pu.Hostname()) {
			t.Errorf("s1bridge's nats.url names %s, not a node", u)
		}
	}
	if cfg.Streams.Events.Replicas != len(nodes) {
		t.Errorf("s1bridge's streams.events.replicas %d with %d nodes", cfg.Streams.Events.Replicas, len(nodes))
	}

	// The replicas share one emulator: the emulator service, at the address
	// it listens on, with the token it accepts.
	emu, ok := c.Services["emulator"]
	if !ok || len(emu.Command) == 0 || emu.Command[0] != "emulator" {
		t.Fatalf("%s: no emulator service running `s1bridge emulator` (%q)", composeFile, emu.Command)
	}
	flagOf := func(name string) string {
		if i := slices.Index(emu.Command, name); i > 0 && i+1 < len(emu.Command) {
			return emu.Command[i+1]
		}
		return ""
	}
	_, port, _ := net.SplitHostPort(flagOf("--listen"))
	main := cfg.Consoles["main"]
	if main.URL != "http://emulator:"+port || port == "" {
		t.Errorf("console main's url %s, want the emulator service http://emulator:%s", main.URL, port)
	}
	if main.APIToken.Reveal() != flagOf("--token") {
		t.Errorf("console main's token is not the one the emulator service accepts")
	}
}

// permissions returns the publish and subscribe allow lists, sorted, and the
// allow_responses block of the permissions variable name of a parsed
// nats-server.conf.
func permissions(t *testing.T, m map[string]any, name string) (pub, sub []string, resp map[string]any) {
	t.Helper()
	p, ok := m[name].(map[string]any)
	if !ok {
		t.Fatalf("%s defines no %s", natsConf, name)
	}
	list := func(dir string) []string {
		d, _ := p[dir].(map[string]any)
		allow, _ := d["allow"].([]any)
		var out []string
		for _, a := range allow {
			out = append(out, fmt.Sprint(a))
		}
		slices.Sort(out)
		return out
	}
	resp, _ = p["allow_responses"].(map[string]any)
	return list("publish"), list("subscribe"), resp
}

// moduleVersion returns the version of module path that go.mod requires.
func moduleVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(goMod)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(path) + ` (v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod does not require %s", path)
	}
	return string(m[1])
}

// violationLog is a nats-server logger that keeps the permission violations
// the server reports.
type violationLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *violationLog) Errorf(format string, v ...any) {
	if msg := fmt.Sprintf(format, v...); strings.Contains(msg, "Violation") {
		l.mu.Lock()
		l.seen = append(l.seen, msg)
		l.mu.Unlock()
	}
}
func (l *violationLog) Noticef(string, ...any) {}
func (l *violationLog) Warnf(string, ...any)   {}
func (l *violationLog) Fatalf(string, ...any)  {}
func (l *violationLog) Debugf(string, ...any)  {}
func (l *violationLog) Tracef(string, ...any)  {}

func (l *violationLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.seen
	l.seen = nil
	return out
}

// startConfiguredServer starts a nats-server from nats-server.conf, alone:
// the cluster and the monitoring port are removed, clients listen on a free
// loopback port, and JetStream stores under a temporary folder.
func startConfiguredServer(t *testing.T) (*server.Server, *violationLog) {
	t.Helper()
	opts, err := server.ProcessConfigFile(natsConf)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	log := &violationLog{}
	s.SetLogger(log, false, false)
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s, log
}

// connectAs connects to s as u, naming the connection name. Asynchronous
// errors (permission violations) go to the returned channel.
func connectAs(t *testing.T, s *server.Server, u natsUser, name string) (*nats.Conn, <-chan error) {
	t.Helper()
	kp, err := nkeys.FromSeed(u.seed)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	nc, err := nats.Connect(s.ClientURL(), nats.Name(name),
		nats.Nkey(u.pub, kp.Sign),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// TestNATSPermissions runs s1bridge, configured as in Kubernetes, and a SOAR
// client against a server started from nats-server.conf, each as its user
// there: everything they do must be allowed, and what they must not do is
// refused.
func TestNATSPermissions(t *testing.T) {
	users := natsEnv(t)
	s, violations := startConfiguredServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// An operator creates the events stream from its definition, on one
	// server hence with one replica, as `nats stream add --config` would.
	ops, _ := connectAs(t, s, users["ops"], "ops")
	def, err := os.ReadFile(streamFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(def))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		t.Fatal(err)
	}
	raw["num_replicas"] = 1
	body, _ := json.Marshal(raw)
	resp, err := ops.RequestWithContext(ctx, "$JS.API.STREAM.CREATE."+fmt.Sprint(raw["name"]), body)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Config jetstream.StreamConfig `json:"config"`
		Error  *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &created); err != nil || created.Error != nil {
		t.Fatalf("creating the stream from %s: %v %+v", streamFile, err, created.Error)
	}

	// s1bridge with the Kubernetes configuration, authenticating as its user.
	_, emuURL := testenv.Emulator(t)
	_, _, pc := deploymentParts(t, loadManifests(t))
	cfg := productionConfig(t, pc,
		"S1BRIDGE_NATS__URL="+s.ClientURL(),
		"S1BRIDGE_NATS__CREDS_FILE=",
		"S1BRIDGE_NATS__NKEY_FILE="+secretFile(t, "s1bridge.nk", string(users["s1bridge"].seed)),
		"S1BRIDGE_CONSOLES__MAIN__URL="+emuURL,
		"S1BRIDGE_CONSOLES__MAIN__API_TOKEN="+testenv.Token,
		"S1BRIDGE_STREAMS__EVENTS__REPLICAS=1",
		"S1BRIDGE_HTTP__LISTEN=127.0.0.1:0",
	)
	// running is the replica running, stopped at cleanup if the test ends early.
	var running *connector.Connector
	t.Cleanup(func() {
		if running != nil {
			_ = running.Stop(context.Background())
		}
	})
	start := func() {
		t.Helper()
		c, err := connector.New(cfg, testenv.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			_ = c.Stop(context.Background())
			t.Fatalf("s1bridge does not start with its permissions: %v (violations: %q)", err, violations.take())
		}
		running = c
	}
	stop := func() {
		t.Helper()
		c := running
		running = nil
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	// sameStream fails the test unless the events stream is configured as
	// the definition made it.
	ojs, err := jetstream.New(ops)
	if err != nil {
		t.Fatal(err)
	}
	want := created.Config
	want.Metadata = nil // the server's own bookkeeping (API levels, version)
	sameStream := func(what string) {
		t.Helper()
		s, err := ojs.Stream(ctx, cfg.EventsStreamName())
		if err != nil {
			t.Fatal(err)
		}
		got := s.CachedInfo().Config
		got.Metadata = nil
		if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
			t.Errorf("%s:\n%s\nthe definition in %s makes:\n%s", what, g, streamFile, w)
		}
	}
	start()
	subj := running.Subjects()
	sameStream("s1bridge updated the stream made from the definition")

	// The watermark record is written at the end of each complete poll.
	state, err := ojs.KeyValue(ctx, subj.BucketName(subjects.BucketState))
	if err != nil {
		t.Fatal(err)
	}
	cursors, err := state.Watch(ctx, subjects.CursorKey("main", subjects.EntityThreat))
	if err != nil {
		t.Fatal(err)
	}
	defer cursors.Stop()
	// nextPoll waits for a complete poll written after revision after, and
	// returns its revision.
	nextPoll := func(after uint64) uint64 {
		t.Helper()
		for {
			select {
			case e := <-cursors.Updates():
				if e == nil || e.Revision() <= after {
					continue
				}
				var cur struct {
					LastPollAt time.Time `json:"lastPollAt"`
				}
				if err := json.Unmarshal(e.Value(), &cur); err != nil {
					t.Fatal(err)
				}
				if !cur.LastPollAt.IsZero() {
					return e.Revision()
				}
			case <-ctx.Done():
				t.Fatalf("no complete poll (violations: %q)", violations.take())
			}
		}
	}
	nextPoll(0)

	// SOAR reads the events through its durable consumer and acknowledges them.
	soar, _ := connectAs(t, s, users["soar"], "soar")
	sjs, err := jetstream.New(soar)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := sjs.CreateOrUpdateConsumer(ctx, cfg.EventsStreamName(), jetstream.ConsumerConfig{
		Durable: "soar", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: subj.ConsoleEvents("main"),
	})
	if err != nil {
		t.Fatalf("soar creates its consumer: %v", err)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatalf("soar acknowledges %s: %v", msg.Subject(), err)
		}
		n++
	}
	if n != 3 || batch.Error() != nil {
		t.Fatalf("soar read %d events: %v", n, batch.Error())
	}

	// SOAR calls actions, and discovers the service.
	for _, action := range []string{"agents.list", "ingest.status"} {
		r, err := connector.Call(ctx, soar, subj.Action("main", action), action, "/soar", []byte(`{}`))
		if err != nil || r.Err != nil {
			t.Fatalf("soar calls %s: %v %v", action, err, r)
		}
	}
	// A mutating action: its idempotency record and audit records are
	// written, and a repeat is answered from the record.
	h, body, err := ce.Encode(ce.Event{ID: "perm-1", Source: "/soar", Type: subjects.RequestType("agents.disconnect"), Data: []byte(`{"agentIds":["1559342436290084702"]}`)}, ce.ModeBinary)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		m, err := soar.RequestMsgWithContext(ctx, &nats.Msg{Subject: subj.Action("main", "agents.disconnect"), Header: h, Data: body})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := connector.ParseReply(m); err != nil || r.Err != nil {
			t.Fatalf("soar calls agents.disconnect: %v %v (violations: %q)", err, r.Err, violations.take())
		}
	}
	if _, err := soar.RequestWithContext(ctx, "$SRV.INFO."+subjects.ServiceName, nil); err != nil {
		t.Fatalf("$SRV.INFO: %v", err)
	}
	// /readyz looks the stream up.
	hr, err := http.Get("http://" + running.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %s", hr.Status)
	}

	// A rolling update: this replica drains and deletes its lease, the next
	// takes the lease over and loads every threat's state with a watch. In
	// between, an operator deletes the events stream: the next replica
	// creates it, as the definition does.
	stop()
	last, err := state.Get(ctx, "main.cursor")
	if err != nil {
		t.Fatal(err)
	}
	if err := ojs.DeleteStream(ctx, cfg.EventsStreamName()); err != nil {
		t.Fatal(err)
	}
	start()
	sameStream("s1bridge created the stream")
	nextPoll(last.Revision())
	stop()

	if v := violations.take(); len(v) != 0 {
		t.Errorf("permission violations:\n%s", strings.Join(v, "\n"))
	}
	// What each must not do.
	probes := map[string]struct {
		nc   *nats.Conn
		errs <-chan error
	}{}
	for _, u := range []string{"s1bridge", "soar"} {
		nc, errs := connectAs(t, s, users[u], u+"-probe")
		probes[u] = struct {
			nc   *nats.Conn
			errs <-chan error
		}{nc, errs}
	}
	for _, tc := range []struct {
		user, op, subject, why string
	}{
		{"s1bridge", "pub", "$JS.API.STREAM.DELETE.S1_EVENTS", "delete the events"},
		{"s1bridge", "pub", "$JS.API.STREAM.PURGE.KV_S1_STATE", "purge its state"},
		{"s1bridge", "pub", "$JS.API.STREAM.DELETE.S1_AUDIT", "delete the audit"},
		{"s1bridge", "pub", "$JS.API.STREAM.PURGE.S1_AUDIT", "purge the audit"},
		{"s1bridge", "sub", "s1.main.audit.>", "read the audit"},
		{"s1bridge", "pub", "$JS.API.STREAM.CREATE.OTHER", "create other streams"},
		{"s1bridge", "pub", "$KV.OTHER.key", "write other buckets"},
		{"s1bridge", "pub", "_INBOX.someone", "publish to inboxes it was not asked to reply to"},
		{"s1bridge", "sub", "s1.main.event.>", "read the events"},
		{"s1bridge", "sub", ">", "read everything"},
		{"soar", "pub", "s1.main.event.threat.1.created", "forge events"},
		{"soar", "pub", "$KV.S1_STATE.main.cursor", "move the watermark"},
		{"soar", "pub", "$KV.S1_LEASES.main.ingest", "take the lease"},
		{"soar", "pub", "$KV.S1_REQUESTS.main.req.x", "forge a request's outcome"},
		{"soar", "pub", "s1.main.audit.agents.disconnect.completed", "forge audit records"},
		{"soar", "pub", "$JS.API.STREAM.DELETE.S1_EVENTS", "delete the events"},
		{"soar", "pub", "$JS.API.CONSUMER.DELETE.S1_EVENTS.other", "delete others' consumers"},
		{"soar", "sub", "s1.*.action.>", "intercept requests"},
	} {
		p := probes[tc.user]
		if tc.op == "pub" {
			err = p.nc.Publish(tc.subject, nil)
		} else {
			_, err = p.nc.SubscribeSync(tc.subject)
		}
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-p.errs:
			if !strings.Contains(err.Error(), "permissions violation") || !strings.Contains(err.Error(), tc.subject) {
				t.Errorf("%s %s %s: %v", tc.user, tc.op, tc.subject, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s can %s: %s %s is allowed", tc.user, tc.why, tc.op, tc.subject)
		}
	}
}

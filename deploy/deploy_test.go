package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/connector/store"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

// The artefacts under test, relative to this folder.
const (
	kubeDir       = "kubernetes"
	kustomization = "kustomization.yaml"
	streamFile    = "streams/S1_EVENTS.json"
	auditFile     = "streams/S1_AUDIT.json"
	streamsDoc    = "streams/README.md"
	unitFile      = "systemd/s1bridge.service"
	dockerFile    = "Dockerfile"
	goMod         = "../go.mod"
)

// drainTimeout is how long a stopping s1bridge may take (README, Operations:
// service.action_timeout + 5 s). Whatever stops it must wait longer.
func drainTimeout(cfg *config.Config) time.Duration { return cfg.Service.ActionTimeout + 5*time.Second }

// peakRSS is the ingestion benchmark's bound on s1bridge's resident memory
// while it ingests a large backlog (bench/ingest_test.go, targetRSS): memory
// limits must leave room above it.
const peakRSS = 150 << 20

// object is one document of the Kubernetes manifests.
type object struct {
	File       string     `yaml:"-"`
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	node       *yaml.Node
}

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// The parts of each kind the tests look at. Fields that would default when
// missing are pointers, so "absent" and "false" differ.
type (
	deployment struct {
		Spec struct {
			Replicas int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Strategy struct {
				Type          string `yaml:"type"`
				RollingUpdate struct {
					MaxUnavailable any `yaml:"maxUnavailable"`
				} `yaml:"rollingUpdate"`
			} `yaml:"strategy"`
			Template struct {
				Metadata objectMeta `yaml:"metadata"`
				Spec     podSpec    `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	podSpec struct {
		AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
		EnableServiceLinks            *bool `yaml:"enableServiceLinks"`
		TerminationGracePeriodSeconds *int  `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
			RunAsUser      *int  `yaml:"runAsUser"`
			RunAsGroup     *int  `yaml:"runAsGroup"`
			FSGroup        *int  `yaml:"fsGroup"`
			SeccompProfile struct {
				Type string `yaml:"type"`
			} `yaml:"seccompProfile"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []volume    `yaml:"volumes"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
	}
	volume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name        string `yaml:"name"`
			DefaultMode *int   `yaml:"defaultMode"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName  string `yaml:"secretName"`
			DefaultMode *int   `yaml:"defaultMode"`
		} `yaml:"secret"`
	}
	configMap struct {
		Data map[string]string `yaml:"data"`
	}
	secret struct {
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
	service struct {
		Spec struct {
			Type     string            `yaml:"type"`
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort any    `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	podDisruptionBudget struct {
		Spec struct {
			MinAvailable any `yaml:"minAvailable"`
			Selector     struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	kustomizationFile struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Namespace  string   `yaml:"namespace"`
		Resources  []string `yaml:"resources"`
		Images     []struct {
			Name   string `yaml:"name"`
			NewTag string `yaml:"newTag"`
		} `yaml:"images"`
	}
)

// manifests are the decoded Kubernetes manifests.
type manifests struct {
	objects []object
	kust    kustomizationFile
}

// loadManifests decodes every document of every YAML file in kubeDir.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", kubeDir, err)
	}
	m := &manifests{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == kustomization {
			dec := yaml.NewDecoder(bytes.NewReader(b))
			dec.KnownFields(true)
			if err := dec.Decode(&m.kust); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 1; ; i++ {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			o := object{File: filepath.Base(f), node: &n}
			if err := n.Decode(&o); err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s, document %d: apiVersion, kind and metadata.name are required", f, i)
			}
			m.objects = append(m.objects, o)
		}
	}
	return m
}

// find returns the object of kind and name, failing the test when there is
// none.
func (m *manifests) find(t *testing.T, kind, name string) object {
	t.Helper()
	for _, o := range m.objects {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %q in %s", kind, name, kubeDir)
	return object{}
}

// only returns the one object of kind.
func (m *manifests) only(t *testing.T, kind string) object {
	t.Helper()
	var found []object
	for _, o := range m.objects {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s in %s, found %d", kind, kubeDir, len(found))
	}
	return found[0]
}

func decodeAs[T any](t *testing.T, o object) T {
	t.Helper()
	var v T
	if err := o.node.Decode(&v); err != nil {
		t.Fatalf("%s %s (%s): %v", o.Kind, o.Metadata.Name, o.File, err)
	}
	return v
}

// podConfig is the configuration file the Deployment mounts from its
// ConfigMap: its text, and where the pod sees it.
type podConfig struct {
	text       string
	path       string // --config
	configMap  string
	secretName string
	secretDir  string // where the Secret is mounted
}

// deploymentParts decodes the Deployment and follows its --config argument
// to the ConfigMap key it reads, and finds where the Secret is mounted.
func deploymentParts(t *testing.T, m *manifests) (deployment, container, podConfig) {
	t.Helper()
	d := decodeAs[deployment](t, m.only(t, "Deployment"))
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, found %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	var pc podConfig
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("container args %q name no --config file", c.Args)
	}
	pc.path = c.Args[i+1]
	volumes := map[string]volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			t.Fatalf("volume mount %q has no volume", vm.Name)
		}
		switch {
		case v.ConfigMap != nil && path.Dir(pc.path) == vm.MountPath:
			pc.configMap = v.ConfigMap.Name
			data := decodeAs[configMap](t, m.find(t, "ConfigMap", v.ConfigMap.Name)).Data
			text, ok := data[path.Base(pc.path)]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %q, which --config %s reads", v.ConfigMap.Name, path.Base(pc.path), pc.path)
			}
			pc.text = text
		case v.Secret != nil:
			pc.secretName, pc.secretDir = v.Secret.SecretName, vm.MountPath
		}
	}
	if pc.configMap == "" {
		t.Fatalf("no ConfigMap is mounted where --config %s points", pc.path)
	}
	if pc.secretName == "" {
		t.Fatal("no Secret is mounted")
	}
	return d, c, pc
}

// loadConfigText loads a configuration file holding text as s1bridge does,
// with environ as its whole environment.
func loadConfigText(t *testing.T, text string, environ ...string) (*config.Config, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.LoadWith(config.Options{File: f, Environ: append([]string{}, environ...), Actions: handlers.Names()})
}

// secretFile writes a file only its owner may read and returns its path.
func secretFile(t *testing.T, name, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(content), 0o400); err != nil {
		t.Fatal(err)
	}
	return f
}

// productionConfig loads the ConfigMap's configuration as the pod would, with
// environ on top. The Secret's files do not exist here: the environment points
// s1bridge at stand-ins (the token directly, the credentials at a file).
func productionConfig(t *testing.T, pc podConfig, environ ...string) *config.Config {
	t.Helper()
	base := []string{
		"S1BRIDGE_CONSOLES__MAIN__API_TOKEN=test-token",
		"S1BRIDGE_NATS__CREDS_FILE=" + secretFile(t, "nats.creds", "stand-in"),
	}
	cfg, err := loadConfigText(t, pc.text, append(base, environ...)...)
	if err != nil {
		t.Fatalf("the ConfigMap's configuration does not load: %v", err)
	}
	return cfg
}

// secretPaths returns every file path the configuration text names for a
// secret (NATS credentials and keys, console token files).
func secretPaths(t *testing.T, text string) map[string]string {
	t.Helper()
	var raw struct {
		NATS struct {
			CredsFile string `yaml:"creds_file"`
			NKeyFile  string `yaml:"nkey_file"`
		} `yaml:"nats"`
		Consoles map[string]struct {
			APITokenFile string `yaml:"api_token_file"`
		} `yaml:"consoles"`
	}
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for key, p := range map[string]string{"nats.creds_file": raw.NATS.CredsFile, "nats.nkey_file": raw.NATS.NKeyFile} {
		if p != "" {
			out[key] = p
		}
	}
	for name, c := range raw.Consoles {
		if c.APITokenFile != "" {
			out["consoles."+name+".api_token_file"] = c.APITokenFile
		}
	}
	return out
}

// show prints what p points to, or "absent".
func show[T any](p *T) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprint(*p)
}

// parseBytes reads a Kubernetes memory quantity (256Mi) or a GOMEMLIMIT
// (230MiB).
func parseBytes(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"Ki", 10}, {"Mi", 20}, {"Gi", 30}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v << u.shift, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)

	t.Run("kustomization", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(kubeDir, "*.yaml"))
		var want []string
		for _, f := range files {
			if b := filepath.Base(f); b != kustomization {
				want = append(want, b)
			}
		}
		got := slices.Sorted(slices.Values(m.kust.Resources))
		if !slices.Equal(got, want) {
			t.Errorf("resources %q, want every manifest of the folder %q", got, want)
		}
		ns := m.only(t, "Namespace")
		if m.kust.Namespace != ns.Metadata.Name {
			t.Errorf("namespace %q, want the Namespace's %q", m.kust.Namespace, ns.Metadata.Name)
		}
		seen := map[string]string{}
		for _, o := range m.objects {
			if o.Metadata.Namespace != "" {
				t.Errorf("%s %s sets namespace %q: kustomization.yaml sets it", o.Kind, o.Metadata.Name, o.Metadata.Namespace)
			}
			id := o.Kind + "/" + o.Metadata.Name
			if f, dup := seen[id]; dup {
				t.Errorf("%s defined in %s and %s", id, f, o.File)
			}
			seen[id] = o.File
		}
		_, c, _ := deploymentParts(t, m)
		repo, _, _ := strings.Cut(c.Image, ":")
		if len(m.kust.Images) != 1 || m.kust.Images[0].Name != repo || m.kust.Images[0].NewTag == "" {
			t.Errorf("images %+v, want one entry naming the Deployment's image %q with a tag", m.kust.Images, repo)
		}
	})

	t.Run("deployment", func(t *testing.T) {
		d, c, pc := deploymentParts(t, m)
		cfg := productionConfig(t, pc)
		pod := d.Spec.Template.Spec
		if d.Spec.Replicas != 3 {
			t.Errorf("replicas %d, want 3", d.Spec.Replicas)
		}
		if d.Spec.Strategy.Type != "RollingUpdate" || d.Spec.Strategy.RollingUpdate.MaxUnavailable != 1 {
			t.Errorf("strategy %+v, want RollingUpdate with maxUnavailable 1", d.Spec.Strategy)
		}
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("selector %s=%s does not match the pod's labels", k, v)
			}
		}
		if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drainTimeout(cfg) {
			t.Errorf("terminationGracePeriodSeconds %s, want above the drain timeout %s", show(g), drainTimeout(cfg))
		}
		if p := pod.AutomountServiceAccountToken; p == nil || *p {
			t.Error("automountServiceAccountToken must be false: s1bridge does not call the Kubernetes API")
		}
		if p := pod.EnableServiceLinks; p == nil || *p {
			t.Error("enableServiceLinks must be false (see TestServiceLinksWouldStopStart)")
		}

		sc := pod.SecurityContext
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("pod securityContext: runAsNonRoot %s, runAsUser %s: want true and a non-zero user", show(sc.RunAsNonRoot), show(sc.RunAsUser))
		}
		if sc.FSGroup == nil || sc.RunAsGroup == nil || *sc.FSGroup != *sc.RunAsGroup {
			t.Error("fsGroup must equal runAsGroup, or the user cannot read the Secret's files (mode 0400, group fsGroup)")
		}
		if sc.SeccompProfile.Type != "RuntimeDefault" {
			t.Errorf("seccompProfile %q, want RuntimeDefault", sc.SeccompProfile.Type)
		}
		csc := c.SecurityContext
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
			csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
			!slices.Equal(csc.Capabilities.Drop, []string{"ALL"}) {
			t.Errorf("container securityContext: allowPrivilegeEscalation %s, readOnlyRootFilesystem %s, drop %q: want false, true, [ALL]",
				show(csc.AllowPrivilegeEscalation), show(csc.ReadOnlyRootFilesystem), csc.Capabilities.Drop)
		}

		// Probes reach the health server where the configuration puts it.
		host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
		if err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
			t.Errorf("http.listen %s: the kubelet's probes cannot reach %s; listen on 0.0.0.0", cfg.HTTP.Listen, host)
		}
		ports := map[string]int{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		for _, p := range []struct {
			name, path string
			probe      *probe
		}{{"readinessProbe", "/readyz", c.ReadinessProbe}, {"livenessProbe", "/healthz", c.LivenessProbe}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: want an httpGet probe", p.name)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
			}
			got := fmt.Sprint(p.probe.HTTPGet.Port)
			if n, named := ports[got]; named {
				got = strconv.Itoa(n)
			}
			if got != port {
				t.Errorf("%s reaches port %v, s1bridge listens on %s", p.name, p.probe.HTTPGet.Port, port)
			}
		}

		// Memory: a limit above the measured peak, and a soft limit below it.
		limit, err := parseBytes(c.Resources.Limits["memory"])
		if err != nil || limit <= peakRSS {
			t.Errorf("memory limit %q, want above the %d MiB peak (%v)", c.Resources.Limits["memory"], peakRSS>>20, err)
		}
		if _, ok := c.Resources.Requests["memory"]; !ok {
			t.Error("no memory request")
		}
		var gomemlimit string
		for _, e := range c.Env {
			if e.Name == "GOMEMLIMIT" {
				gomemlimit = e.Value
			}
		}
		if soft, err := parseBytes(gomemlimit); err != nil || soft >= limit {
			t.Errorf("GOMEMLIMIT %q, want below the memory limit %d (%v)", gomemlimit, limit, err)
		}

		// Every secret file the configuration names is a key of the mounted Secret.
		s := decodeAs[secret](t, m.find(t, "Secret", pc.secretName))
		for key, p := range secretPaths(t, pc.text) {
			dir, name := path.Split(p)
			_, inData := s.Data[name]
			_, inString := s.StringData[name]
			if path.Clean(dir) != pc.secretDir || !(inData || inString) {
				t.Errorf("%s %s is not a key of Secret %s mounted at %s", key, p, pc.secretName, pc.secretDir)
			}
		}
		// 0400 in octal; YAML reads 0400 as octal, a decimal 400 would give group write.
		for _, v := range pod.Volumes {
			var mode *int
			switch {
			case v.ConfigMap != nil:
				mode = v.ConfigMap.DefaultMode
			case v.Secret != nil:
				mode = v.Secret.DefaultMode
			}
			if mode == nil || *mode != 0o400 {
				t.Errorf("volume %s: defaultMode %s, want 0400 (octal)", v.Name, show(mode))
			}
		}
		for _, vm := range c.VolumeMounts {
			if !vm.ReadOnly {
				t.Errorf("volume mount %s is writable", vm.Name)
			}
		}
	})

	t.Run("production config", func(t *testing.T) {
		_, _, pc := deploymentParts(t, m)
		cfg := productionConfig(t, pc)
		if cfg.Streams.Events.Replicas != 3 {
			t.Errorf("streams.events.replicas %d, want 3 (one copy per NATS node)", cfg.Streams.Events.Replicas)
		}
		if cfg.Log.Format != config.FormatJSON {
			t.Errorf("log.format %q, want json", cfg.Log.Format)
		}
		if cfg.NATS.URL == "" {
			t.Error("nats.url is empty: s1bridge would start an embedded server in the pod")
		}
		if len(cfg.Warnings()) != 0 {
			t.Errorf("warnings: %q", cfg.Warnings())
		}
	})

	t.Run("service", func(t *testing.T) {
		d, c, _ := deploymentParts(t, m)
		svc := m.only(t, "Service")
		s := decodeAs[service](t, svc)
		for k, v := range s.Spec.Selector {
			if d.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("selector %s=%s matches no pod", k, v)
			}
		}
		if len(s.Spec.Selector) == 0 {
			t.Error("no selector")
		}
		ports := map[string]int{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		if len(s.Spec.Ports) != 1 {
			t.Fatalf("want one port, found %d", len(s.Spec.Ports))
		}
		target, ok := ports[fmt.Sprint(s.Spec.Ports[0].TargetPort)]
		if !ok {
			t.Fatalf("targetPort %v names no container port", s.Spec.Ports[0].TargetPort)
		}
		a := svc.Metadata.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" || a["prometheus.io/port"] != strconv.Itoa(target) {
			t.Errorf("annotations %v: want scrape of /metrics on the pods' port %d", a, target)
		}
	})

	t.Run("disruption budget", func(t *testing.T) {
		d, _, _ := deploymentParts(t, m)
		p := decodeAs[podDisruptionBudget](t, m.only(t, "PodDisruptionBudget"))
		if p.Spec.MinAvailable != 2 || d.Spec.Replicas <= 2 {
			t.Errorf("minAvailable %v with %d replicas: want 2, below the replicas", p.Spec.MinAvailable, d.Spec.Replicas)
		}
		if !reflect.DeepEqual(p.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
			t.Errorf("selector %v, want the Deployment's %v", p.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
		}
	})
}

// serviceLinkVars are the variables Kubernetes gives every container of the
// namespace for a Service named name with one port, unless the pod sets
// enableServiceLinks: false.
func serviceLinkVars(name string, port int) []string {
	p := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	n := strconv.Itoa(port)
	return []string{
		p + "_SERVICE_HOST=10.0.0.7", p + "_SERVICE_PORT=" + n, p + "_PORT=tcp://10.0.0.7:" + n,
		p + "_PORT_" + n + "_TCP=tcp://10.0.0.7:" + n, p + "_PORT_" + n + "_TCP_PROTO=tcp",
		p + "_PORT_" + n + "_TCP_PORT=" + n, p + "_PORT_" + n + "_TCP_ADDR=10.0.0.7",
	}
}

// TestServiceLinksWouldStopStart shows why the Deployment turns service links
// off: the variables of a Service named s1bridge-* start with S1BRIDGE_, and
// s1bridge refuses them as unknown configuration keys.
func TestServiceLinksWouldStopStart(t *testing.T) {
	m := loadManifests(t)
	_, _, pc := deploymentParts(t, m)
	productionConfig(t, pc) // loads without them
	for _, o := range m.objects {
		if o.Kind != "Service" {
			continue
		}
		s := decodeAs[service](t, o)
		vars := serviceLinkVars(o.Metadata.Name, s.Spec.Ports[0].Port)
		if !strings.HasPrefix(vars[0], config.EnvPrefix) {
			t.Fatalf("Service %s no longer yields %s* variables: update this test and the Deployment's comment", o.Metadata.Name, config.EnvPrefix)
		}
		_, err := loadConfigText(t, pc.text, append(vars, "S1BRIDGE_CONSOLES__MAIN__API_TOKEN=x", "S1BRIDGE_NATS__CREDS_FILE="+secretFile(t, "c", "x"))...)
		if err == nil {
			t.Errorf("the variables of Service %s are accepted: enableServiceLinks: false may no longer be needed", o.Metadata.Name)
		}
	}
}

// streamRequired are the fields the nats CLI's schema for a stream
// configuration requires (jsm.go, schemas/jetstream/api/v1/stream_configuration.json).
var streamRequired = []string{"retention", "max_consumers", "max_msgs", "max_bytes", "max_age", "storage", "num_replicas"}

func TestEventsStreamDefinition(t *testing.T) {
	m := loadManifests(t)
	_, _, pc := deploymentParts(t, m)
	cfg := productionConfig(t, pc)
	subj, err := subjects.New(cfg.Subjects.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	checkStreamDefinition(t, streamFile, store.EventsStreamConfig(cfg, subj))
	checkStreamDefinition(t, auditFile, store.AuditStreamConfig(cfg, subj))

	// The README's commands for the key-value buckets match the code's.
	doc, err := os.ReadFile(streamsDoc)
	if err != nil {
		t.Fatal(err)
	}
	ttls := map[string]time.Duration{
		subj.BucketName(subjects.BucketLeases):   connector.DefaultLeaseTTL,
		subj.BucketName(subjects.BucketRequests): cfg.Service.IdempotencyWindow,
	}
	for _, bucket := range []string{subj.BucketName(subjects.BucketState), subj.BucketName(subjects.BucketLeases), subj.BucketName(subjects.BucketMonitors), subj.BucketName(subjects.BucketRequests)} {
		line := regexp.MustCompile(`(?m)^nats kv add ` + bucket + ` .*$`).Find(doc)
		if line == nil {
			t.Errorf("%s: no `nats kv add %s` command", streamsDoc, bucket)
			continue
		}
		for _, flag := range []string{"--history 1", "--replicas " + strconv.Itoa(cfg.Streams.Events.Replicas), "--storage file"} {
			if !bytes.Contains(line, []byte(flag)) {
				t.Errorf("%s: %q lacks %q", streamsDoc, line, flag)
			}
		}
		ttl, has := ttls[bucket]
		if got := regexp.MustCompile(`--ttl (\S+)`).FindSubmatch(line); has != (got != nil) || has && string(got[1]) != ttl.String() {
			t.Errorf("%s: %q: want the TTL %v (none: 0s)", streamsDoc, line, ttl)
		}
	}
}

// checkStreamDefinition checks that file defines the stream want, in the
// JSON the server and the nats CLI read.
func checkStreamDefinition(t *testing.T, file string, want jetstream.StreamConfig) {
	t.Helper()
	streamFile := file
	b, err := os.ReadFile(streamFile)
	if err != nil {
		t.Fatal(err)
	}
	// The server's own type, strictly: a misspelt field would be ignored by
	// the server and the CLI alike.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sc server.StreamConfig
	if err := dec.Decode(&sc); err != nil {
		t.Fatalf("%s: %v", streamFile, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range streamRequired {
		if _, ok := raw[k]; !ok {
			t.Errorf("%s has no %q: nats stream add --config requires it", streamFile, k)
		}
	}

	var got jetstream.StreamConfig
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	// -1 and 0 both mean "no limit": the server stores -1, s1bridge sends 0.
	for _, p := range []*int64{&got.MaxMsgs, &got.MaxBytes, &got.MaxMsgsPerSubject} {
		if *p == -1 {
			*p = 0
		}
	}
	if got.MaxConsumers == -1 {
		got.MaxConsumers = 0
	}
	if got.MaxMsgSize == -1 {
		got.MaxMsgSize = 0
	}

	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("%s differs from the stream s1bridge creates with the production configuration:\n%s\nwant:\n%s", streamFile, g, w)
	}
}

// instruction is one Dockerfile instruction with its continuation lines
// joined.
type instruction struct{ cmd, args string }

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open(dockerFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if l, more := strings.CutSuffix(line, `\`); more {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := readDockerfile(t)
	last := func(cmd string) string {
		for i := len(ins) - 1; i >= 0; i-- {
			if ins[i].cmd == cmd {
				return ins[i].args
			}
		}
		t.Fatalf("no %s", cmd)
		return ""
	}
	execForm := func(cmd string) []string {
		var v []string
		if err := json.Unmarshal([]byte(last(cmd)), &v); err != nil {
			t.Fatalf("%s %s: not the exec (JSON) form: %v", cmd, last(cmd), err)
		}
		return v
	}

	// The builder's Go is the one go.mod asks for.
	mod, err := os.ReadFile(goMod)
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goLine == nil || !slices.Contains(ins, instruction{"ARG", "GO_VERSION=" + string(goLine[1])}) {
		t.Errorf("want ARG GO_VERSION=%s, as go.mod says", goLine[1])
	}
	// Both base images are pinned by digest; the builder's tag is go.mod's Go.
	pinned := regexp.MustCompile(`^([^@\s]+)@sha256:[0-9a-f]{64}$`)
	var goImage string
	for _, in := range ins {
		if v, ok := strings.CutPrefix(in.args, "GO_IMAGE="); ok && in.cmd == "ARG" {
			goImage = v
		}
	}
	if m := pinned.FindStringSubmatch(goImage); m == nil || !strings.HasPrefix(m[1], "golang:"+string(goLine[1])+".") {
		t.Errorf("ARG GO_IMAGE=%s: want golang:%s.<patch>... pinned by digest", goImage, goLine[1])
	}
	if first := ins[slices.IndexFunc(ins, func(in instruction) bool { return in.cmd == "FROM" })]; !strings.Contains(first.args, "${GO_IMAGE}") {
		t.Errorf("the build stage is FROM %s, not the pinned GO_IMAGE", first.args)
	}

	var build string
	for _, in := range ins {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "./cmd/s1bridge"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build lacks %s: %s", want, build)
		}
	}
	// -X with a name that does not exist is silently ignored: check the name.
	_ = &connector.Version // a variable, as -X needs
	wantX := reflect.TypeFor[connector.Connector]().PkgPath() + ".Version"
	if x := regexp.MustCompile(`-X ([^=\s]+)=`).FindStringSubmatch(build); x == nil || x[1] != wantX {
		t.Errorf("go build sets %v, want -X %s", x, wantX)
	}

	if m := pinned.FindStringSubmatch(last("FROM")); m == nil || m[1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %s: want gcr.io/distroless/static-debian12:nonroot pinned by digest", last("FROM"))
	}
	m := loadManifests(t)
	d, c, pc := deploymentParts(t, m)
	uid := strconv.Itoa(*d.Spec.Template.Spec.SecurityContext.RunAsUser)
	gid := strconv.Itoa(*d.Spec.Template.Spec.SecurityContext.RunAsGroup)
	if u := last("USER"); u != uid+":"+gid {
		t.Errorf("USER %s, want the Deployment's %s:%s", u, uid, gid)
	}
	if ep := execForm("ENTRYPOINT"); !slices.Equal(ep, []string{"/s1bridge"}) {
		t.Errorf("ENTRYPOINT %q", ep)
	}
	if cmd := execForm("CMD"); !slices.Equal(cmd, c.Args) || !slices.Equal(cmd, []string{"run", "--config", pc.path}) {
		t.Errorf("CMD %q, want the Deployment's args %q", cmd, c.Args)
	}

	// The image makes s1bridge listen where probes reach it, on the port it exposes.
	listen, ok := strings.CutPrefix(last("ENV"), "S1BRIDGE_HTTP__LISTEN=")
	if !ok {
		t.Fatalf("ENV %s, want S1BRIDGE_HTTP__LISTEN", last("ENV"))
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || host != "0.0.0.0" || last("EXPOSE") != port {
		t.Errorf("S1BRIDGE_HTTP__LISTEN=%s with EXPOSE %s: want 0.0.0.0 on the exposed port", listen, last("EXPOSE"))
	}
	cfg := productionConfig(t, pc, "S1BRIDGE_HTTP__LISTEN="+listen)
	if cfg.HTTP.Listen != listen {
		t.Errorf("http.listen %s under the image's environment, want %s", cfg.HTTP.Listen, listen)
	}
}

// unitDirectives returns the values of every directive of a systemd unit,
// by name, in order.
func unitDirectives(t *testing.T, text string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a directive: %q", unitFile, line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	d := unitDirectives(t, string(b))
	one := func(k string) string {
		if len(d[k]) != 1 {
			t.Fatalf("%s: want one %s, found %q", unitFile, k, d[k])
		}
		return d[k][0]
	}

	m := loadManifests(t)
	_, _, pc := deploymentParts(t, m)
	execStart := strings.Fields(one("ExecStart"))
	if len(execStart) != 4 || execStart[1] != "run" || execStart[2] != "--config" || execStart[3] != pc.path {
		t.Errorf("ExecStart %q, want BINARY run --config %s", execStart, pc.path)
	}

	// The credentials reach s1bridge: run the environment the unit sets, with
	// %d (the credentials directory) holding what LoadCredential copies.
	credDir := t.TempDir()
	files := map[string]string{}
	for _, lc := range d["LoadCredential"] {
		id, src, _ := strings.Cut(lc, ":")
		files[id] = src
		if err := os.WriteFile(filepath.Join(credDir, id), []byte("from-"+id), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	var environ []string
	for _, e := range d["Environment"] {
		environ = append(environ, strings.ReplaceAll(e, "%d", credDir))
	}
	cfg, err := loadConfigText(t, pc.text, environ...)
	if err != nil {
		t.Fatalf("the unit's environment with the production configuration: %v", err)
	}
	if got := cfg.Consoles["main"].APIToken.Reveal(); got != "from-api-token" {
		t.Errorf("the console's token comes from %q, not the api-token credential", got)
	}
	if got := cfg.NATS.CredsFile; got != filepath.Join(credDir, "nats.creds") {
		t.Errorf("nats.creds_file %s, not the nats.creds credential", got)
	}
	if len(cfg.Warnings()) != 0 {
		t.Errorf("warnings: %q", cfg.Warnings())
	}

	stop, err := time.ParseDuration(one("TimeoutStopSec") + "s")
	if err != nil || stop <= drainTimeout(cfg) {
		t.Errorf("TimeoutStopSec %s, want above the drain timeout %s", one("TimeoutStopSec"), drainTimeout(cfg))
	}
	if one("KillSignal") != "SIGTERM" {
		t.Errorf("KillSignal %s: s1bridge drains on SIGTERM", one("KillSignal"))
	}
	maxMem, err := parseBytes(strings.TrimSuffix(one("MemoryMax"), "M") + "Mi")
	if err != nil || maxMem <= peakRSS {
		t.Errorf("MemoryMax %s, want above the %d MiB peak", one("MemoryMax"), peakRSS>>20)
	}
	for _, e := range environ {
		if v, ok := strings.CutPrefix(e, "GOMEMLIMIT="); ok {
			if soft, err := parseBytes(v); err != nil || soft >= maxMem {
				t.Errorf("GOMEMLIMIT %s, want below MemoryMax", v)
			}
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not on PATH: the unit was checked above but not verified by systemd")
	}
	// verify insists that ExecStart's binary exists: verify a copy whose only
	// change is that path, in a folder of its own so no other unit is read.
	dir := t.TempDir()
	bin := filepath.Join(dir, "s1bridge")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyText := strings.Replace(string(b), "ExecStart="+execStart[0]+" ", "ExecStart="+bin+" ", 1)
	unit := filepath.Join(dir, filepath.Base(unitFile))
	if err := os.WriteFile(unit, []byte(copyText), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 on unknown keys and unparsable values (it ignores them
	// with a warning): any output is a failure.
	out, err := osexec(analyze, "verify", unit)
	if err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The hardening holds: systemd's own exposure score (0 best, 10 worst)
	// stays at 2.0 or better. --offline needs systemd 250.
	if v, _ := osexec(analyze, "--version"); systemdVersion(v) >= 250 {
		out, err := osexec(analyze, "security", "--offline=true", "--threshold=20", unit)
		if err != nil {
			t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
		}
	} else {
		t.Logf("systemd %d: no offline security review", systemdVersion(v))
	}
}

func osexec(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
	return cmd.CombinedOutput()
}

// systemdVersion reads "systemd 252 (252.38-1~deb12u1)".
func systemdVersion(out []byte) int {
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

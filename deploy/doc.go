// Package deploy holds how s1bridge runs in production: the container image
// (Dockerfile), Kubernetes manifests (kubernetes/), a three-node NATS cluster
// with JetStream and the permissions of each user (nats/), the events stream
// definition for `nats stream add --config` (streams/), a systemd unit
// (systemd/), a Grafana dashboard (grafana/) and Prometheus alert rules
// (prometheus/). README.md says how to use each.
//
// The package has no code. Its tests decode every artefact and hold them to
// the code they deploy: the stream definition equals the one s1bridge creates,
// the manifests agree with each other and with the configuration they mount,
// s1bridge and a SOAR client run against a server started from the NATS
// configuration, within the permissions it grants, and every metric the
// dashboard and the alert rules read is on a running connector's /metrics.
package deploy

// Package config is the s1bridge configuration (DESIGN.md §2 and §8): one
// struct tree with its defaults in code, loaded in layers and validated up
// front.
//
// Layers, each overriding the one before:
//
//  1. the base: [Default] (or [Demo] for `s1bridge demo`);
//  2. the YAML file (`config.yaml` by default for `s1bridge run`);
//  3. environment variables: S1BRIDGE_ plus the upper-case key path with "__"
//     between levels, e.g. S1BRIDGE_NATS__URL or
//     S1BRIDGE_CONSOLES__MAIN__API_TOKEN.
//
// Consoles are a map keyed by console name, and the defaults of one console
// ([DefaultConsole]) apply to every console however little of it the file or
// the environment spells out. The set of consoles is the union of the names
// given in the file and in the environment; only when neither names any does
// the base's set stand (so `main` of [Default] is a placeholder, not a console
// every deployment must configure).
//
// Console names keep the case written in the file, and subjects use that
// case. Environment variable names carry no useful case, so the console level
// of an S1BRIDGE_CONSOLES__<NAME>__... variable is matched case-insensitively
// against the consoles of the file, then of the base; a name that matches
// none defines a new console whose name is the lower-case form. Shells cannot
// export a name holding "-", so such a console is reached through env(1) or a
// container's environment instead. Two consoles whose names differ only in case are refused,
// which keeps that match unambiguous.
//
// [Load] refuses a configuration with any problem, and reports all of them at
// once: every problem is a [*FieldError] naming the key (and the environment
// variable when one set it), joined with [errors.Join]. Unknown keys are
// problems too, so a typo such as `consoles.main.timout` or
// S1BRIDGE_NATS__ULR never goes unnoticed.
//
// Secrets (API tokens, NATS token and password) are held in [Secret], which
// prints, marshals and logs as "[REDACTED]"; [Config.Secrets] lists them for
// the log redactor of package logging.
package config

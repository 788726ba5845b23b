package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	env "github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Options says what LoadWith reads. The zero Options reads the process
// environment on top of Default, with no file.
type Options struct {
	// File is the YAML file to read; "" reads none. A file named here that
	// does not exist is an error.
	File string
	// Base supplies the defaults the file and environment override; nil
	// means Default(). Use Demo() for `s1bridge demo`. Base is not modified.
	Base *Config
	// Environ is the environment as KEY=value pairs; nil means
	// os.Environ(). Tests pass a slice (possibly empty) to stay clear of the
	// process environment.
	Environ []string
	// Actions, when not nil, lists the action names that
	// consoles.*.actions.deny may name; nil checks only their syntax.
	Actions []string
}

// Load reads path (see DefaultFile) and the S1BRIDGE_* environment on top
// of Default, and returns the validated configuration or every problem found
// (see package doc).
func Load(path string) (*Config, error) {
	return LoadWith(Options{File: path})
}

// LoadWith loads a configuration as o says: o.Base, then o.File, then the
// S1BRIDGE_* variables of o.Environ. It reads each api_token_file once (a
// relative path is relative to the file's folder, or to the working directory
// with no file), then validates. A file that cannot be read or parsed is
// returned as is; every other problem is a [*FieldError] and all of them are
// returned together.
func LoadWith(o Options) (*Config, error) {
	base := o.Base
	if base == nil {
		base = Default()
	}
	var p problems

	fileRaw := map[string]any{}
	dir := ""
	if o.File != "" {
		k := koanf.New(".")
		if err := k.Load(file.Provider(o.File), yaml.Parser()); err != nil {
			if _, isPath := errors.AsType[*fs.PathError](err); isPath {
				return nil, fmt.Errorf("config: %w", err) // it names the file
			}
			return nil, fmt.Errorf("config: %s: %w", o.File, err)
		}
		fileRaw = k.Raw()
		dir = filepath.Dir(o.File)
	}
	checkKeys(&p, fileRaw, configType, "", nil)
	oneTokenSource(&p, fileRaw, nil)

	environ := o.Environ
	if environ == nil {
		environ = os.Environ()
	}
	em := &envMapper{vars: map[string]string{}}
	em.consoles = consoleNames(fileRaw)
	em.baseConsoles = base.ConsoleNames()
	ek := koanf.New(".")
	err := ek.Load(env.Provider(".", env.Opt{
		Prefix:        EnvPrefix,
		TransformFunc: em.transform,
		EnvironFunc:   func() []string { return environ },
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}
	p = append(p, em.problems...)
	envRaw := ek.Raw()
	checkKeys(&p, envRaw, configType, "", em.under)
	oneTokenSource(&p, envRaw, em.under)

	// The key checks removed what cannot be decoded, so each problem is
	// reported once. Maps go in without a delimiter: a console name is one
	// key even if it holds a dot (validation refuses it by name).
	merged := koanf.New(".")
	for _, m := range []map[string]any{fileRaw, envRaw} {
		if err := merged.Load(confmap.Provider(m, ""), nil); err != nil {
			return nil, fmt.Errorf("config: merge: %w", err)
		}
	}

	cfg := base.clone()
	cfg.warnings = nil
	cfg.decode(&p, merged.Raw(), base)
	cfg.readFiles(&p, dir)
	cfg.validate(&p)
	cfg.checkDenied(&p, o.Actions)
	for _, fe := range p {
		if fe.Env == "" {
			fe.Env = em.vars[fe.Key]
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var (
	configType   = reflect.TypeFor[Config]()
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[time.Duration]()
	stringsType  = reflect.TypeFor[[]string]()
)

// Keys of a console that together say where its token comes from.
const (
	keyAPIToken     = "api_token"
	keyAPITokenFile = "api_token_file"
)

// decode applies raw onto c. Each console named in raw starts from the base's
// console of that name, or DefaultConsole, so partial consoles get every
// default; with no consoles named, the base's set stands.
func (c *Config) decode(p *problems, raw map[string]any, base *Config) {
	consoles, named := raw["consoles"].(map[string]any)
	delete(raw, "consoles")
	decodeSection(p, "", raw, c)
	if !named {
		return
	}
	c.Consoles = make(map[string]Console, len(consoles))
	for name, v := range consoles {
		con := DefaultConsole()
		if b, ok := base.Consoles[name]; ok {
			con = b.clone()
		}
		m, _ := v.(map[string]any) // checkKeys made every console a map
		decodeSection(p, "consoles."+name, m, &con)
		c.Consoles[name] = con
	}
}

// decodeSection decodes in onto the struct out points to, leaving the fields
// in does not name as they are.
func decodeSection(p *problems, prefix string, in map[string]any, out any) {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName: "koanf",
		// Environment values are all strings.
		WeaklyTypedInput: true,
		// "key:" with no value in YAML sets the zero value, and a list
		// replaces the default list instead of being merged into it.
		ZeroFields: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(durationHook, secretHook, stringListHook),
		// Unknown keys were reported by checkKeys, with better messages
		// than ErrorUnused gives (full path, variable name, suggestion).
		Result: out,
	})
	if err != nil {
		p.add(prefix, err)
		return
	}
	addDecodeErrors(p, prefix, d.Decode(in))
}

// addDecodeErrors adds one problem per leaf of mapstructure's error tree
// (joins of *DecodeError, possibly wrapped), named by the full key.
func addDecodeErrors(p *problems, prefix string, err error) {
	switch e := err.(type) {
	case nil:
	case interface{ Unwrap() []error }:
		for _, e := range e.Unwrap() {
			addDecodeErrors(p, prefix, e)
		}
	case *mapstructure.DecodeError:
		if inner := e.Unwrap(); isDecodeTree(inner) {
			addDecodeErrors(p, prefix, inner)
		} else {
			p.add(joinKey(prefix, e.Name()), plainDecodeError(inner))
		}
	default:
		if inner := errors.Unwrap(err); isDecodeTree(inner) {
			addDecodeErrors(p, prefix, inner) // "decoding failed due to...: %w"
		} else {
			p.add(prefix, err)
		}
	}
}

// plainDecodeError rewords mapstructure's type errors for people, without
// echoing the value (it may be a token written under the wrong key).
func plainDecodeError(err error) error {
	if pe, ok := errors.AsType[*mapstructure.ParseError](err); ok {
		return fmt.Errorf("want %s", kindName(pe.Expected.Type()))
	}
	if ue, ok := errors.AsType[*mapstructure.UnconvertibleTypeError](err); ok {
		return fmt.Errorf("want %s, got %s", kindName(ue.Expected.Type()), kindName(reflect.TypeOf(ue.Value)))
	}
	return err
}

func kindName(t reflect.Type) string {
	if t == nil {
		return "nothing"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a section"
	}
	return t.String()
}

// isDecodeTree reports whether err holds further decode errors, rather than
// being the problem of one key.
func isDecodeTree(err error) bool {
	if _, ok := err.(interface{ Unwrap() []error }); ok {
		return true
	}
	_, ok := errors.AsType[*mapstructure.DecodeError](err)
	return ok
}

// durationHook decodes Go duration strings. A bare number other than 0 is
// refused rather than read as nanoseconds.
func durationHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch v := data.(type) {
	case time.Duration:
		return v, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%q is not a Go duration such as 500ms, 30s, 5m or 72h", v)
		}
		return d, nil
	}
	rv := reflect.ValueOf(data)
	if rv.IsValid() && rv.CanFloat() && rv.Float() == 0 ||
		rv.IsValid() && rv.CanInt() && rv.Int() == 0 ||
		rv.IsValid() && rv.CanUint() && rv.Uint() == 0 {
		return time.Duration(0), nil
	}
	return nil, fmt.Errorf("%v is not a Go duration: give the unit, such as \"30s\"", data)
}

// secretHook builds a Secret from a string, trimmed of white space. It never
// echoes the value in an error.
func secretHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != secretType {
		return data, nil
	}
	switch v := data.(type) {
	case Secret:
		return v, nil
	case string:
		return NewSecret(strings.TrimSpace(v)), nil
	}
	return nil, errors.New("must be a string (quote it in YAML)")
}

// stringListHook reads a comma-separated string (from the environment) as a
// list: "a, b" is [a b] and "" the empty list.
func stringListHook(from reflect.Type, to reflect.Type, data any) (any, error) {
	if to != stringsType || from.Kind() != reflect.String {
		return data, nil
	}
	out := []string{}
	for s := range strings.SplitSeq(data.(string), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// checkKeys reports, and deletes from m, every key that the struct type t
// does not have, and every value whose shape (section or value) does not
// match. A section given as null ("nats:" with every key commented out) is
// dropped, so it keeps its defaults; a console given as null is a console
// with only defaults. under names the environment variables behind a key.
func checkKeys(p *problems, m map[string]any, t reflect.Type, path string, under func(string) string) {
	fields := fieldsOf(t)
	for k, v := range m {
		key := joinKey(path, k)
		add := func(err error) {
			fe := &FieldError{Key: key, Err: err}
			if under != nil {
				fe.Env = under(key)
			}
			*p = append(*p, fe)
			delete(m, k)
		}
		ft, ok := fields[k]
		switch {
		case !ok:
			if s := suggest(k, fields); s != "" {
				add(fmt.Errorf("%w (did you mean %q?)", ErrUnknownKey, s))
			} else {
				add(ErrUnknownKey)
			}
		case isLeaf(ft):
			if _, isMap := v.(map[string]any); isMap {
				add(errors.New("is a value, not a section"))
			}
		case v == nil:
			if ft.Kind() == reflect.Map {
				m[k] = map[string]any{}
			} else {
				delete(m, k)
			}
		default:
			sub, isMap := v.(map[string]any)
			if !isMap {
				add(errors.New("is a section: give its keys, not a value"))
				continue
			}
			if ft.Kind() != reflect.Map {
				checkKeys(p, sub, ft, key, under)
				continue
			}
			for name, cv := range sub {
				switch cm := cv.(type) {
				case nil:
					sub[name] = map[string]any{}
				case map[string]any:
					checkKeys(p, cm, ft.Elem(), key+"."+name, under)
				default:
					fe := &FieldError{Key: key + "." + name, Err: errors.New("is a section: give its keys, not a value")}
					if under != nil {
						fe.Env = under(fe.Key)
					}
					*p = append(*p, fe)
					delete(sub, name)
				}
			}
		}
	}
}

// isLeaf reports whether t is a value rather than a section.
func isLeaf(t reflect.Type) bool {
	return t == secretType || t.Kind() != reflect.Struct && t.Kind() != reflect.Map
}

// fieldsOf maps the koanf keys of struct t to their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("koanf")
		if f.Anonymous && tag == ",squash" { // an embedded section: its keys are the parent's
			maps.Copy(out, fieldsOf(f.Type))
			continue
		}
		if tag != "" && tag != "-" {
			out[tag] = f.Type
		}
	}
	return out
}

// suggest returns the known key closest to k, if it is close enough to be
// the key meant.
func suggest(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for name := range fields {
		if d := editDistance(k, name); d < bestD || d == bestD && name < best {
			best, bestD = name, d
		}
	}
	if bestD > 2 || bestD >= len(k) {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b in
// bytes: Levenshtein plus the transposition of two neighbours, the commonest
// typo (ulr for url).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// oneTokenSource makes api_token and api_token_file one setting: a layer
// that sets one clears the other of the layers below (so an environment
// token file replaces a token from the file or the demo), and a layer that
// sets both is refused.
func oneTokenSource(p *problems, raw map[string]any, under func(string) string) {
	consoles, _ := raw["consoles"].(map[string]any)
	for name, v := range consoles {
		con, _ := v.(map[string]any)
		tok, file := isSet(con[keyAPIToken]), isSet(con[keyAPITokenFile])
		switch {
		case tok && file:
			key := "consoles." + name + "."
			fe := &FieldError{Key: key + keyAPITokenFile, Err: errors.New("set either api_token or api_token_file, not both")}
			if under != nil {
				fe.Env = under(key+keyAPIToken) + ", " + under(key+keyAPITokenFile)
			}
			*p = append(*p, fe)
			// Reported once: the file is not read as well.
			delete(con, keyAPITokenFile)
		case tok:
			con[keyAPITokenFile] = ""
		case file:
			con[keyAPIToken] = ""
		}
	}
}

func isSet(v any) bool { return v != nil && v != "" }

// consoleNames returns the console names of a raw configuration map.
func consoleNames(raw map[string]any) []string {
	consoles, _ := raw["consoles"].(map[string]any)
	names := make([]string, 0, len(consoles))
	for name := range consoles {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	if k == "" {
		return path
	}
	return path + "." + k
}

// envMapper turns S1BRIDGE_* variable names into key paths and remembers
// which variable set which key.
type envMapper struct {
	consoles     []string          // console names of the file, matched first
	baseConsoles []string          // console names of the base
	vars         map[string]string // key path → variable name
	problems     problems
}

// transform is the env provider's TransformFunc: S1BRIDGE_A__B_C__D=v
// becomes a.b_c.d=v, with the console level matched to a known console name.
func (e *envMapper) transform(name, value string) (string, any) {
	parts := strings.Split(strings.TrimPrefix(name, EnvPrefix), EnvSeparator)
	for i, part := range parts {
		part = strings.ToLower(part)
		if part == "" || strings.Contains(part, ".") {
			e.problems = append(e.problems, &FieldError{
				Key: strings.ToLower(strings.Join(parts, ".")),
				Env: name,
				Err: errors.New("not a key path: levels are separated by \"__\" and none may be empty or hold a dot"),
			})
			return "", nil
		}
		parts[i] = part
	}
	if len(parts) > 1 && parts[0] == "consoles" {
		parts[1] = e.console(parts[1])
	}
	key := strings.Join(parts, ".")
	if prev, dup := e.vars[key]; dup && prev != name {
		e.problems = append(e.problems, &FieldError{Key: key, Env: name, Err: fmt.Errorf("also set by %s", prev)})
	}
	e.vars[key] = name
	return key, value
}

// console maps the lower-case console level of a variable name to a known
// console: an exact name, else the one name of the file, or of the base,
// equal apart from case. Otherwise it is a new console, named lower.
func (e *envMapper) console(lower string) string {
	if slices.Contains(e.consoles, lower) || slices.Contains(e.baseConsoles, lower) {
		return lower
	}
	for _, names := range [][]string{e.consoles, e.baseConsoles} {
		var found []string
		for _, n := range names {
			if strings.EqualFold(n, lower) {
				found = append(found, n)
			}
		}
		if len(found) == 1 {
			return found[0]
		}
	}
	return lower
}

// under returns the variables that set key or keys below it.
func (e *envMapper) under(key string) string {
	var out []string
	for k, v := range e.vars {
		if k == key || strings.HasPrefix(k, key+".") {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// readFiles resolves the files the configuration reads (relative to dir),
// reads each api_token_file into APIToken, and checks that the NATS
// credential and TLS files can be read. It warns about secret files that
// others may read.
func (c *Config) readFiles(p *problems, dir string) {
	resolve := func(path string) string {
		if path == "" || dir == "" || filepath.IsAbs(path) {
			return path
		}
		return filepath.Join(dir, path)
	}
	for _, name := range c.ConsoleNames() {
		con := c.Consoles[name]
		if con.APITokenFile == "" {
			continue
		}
		key := "consoles." + name + "." + keyAPITokenFile
		con.APITokenFile = resolve(con.APITokenFile)
		b, err := c.readSecretFile(key, con.APITokenFile)
		if err != nil {
			p.add(key, err)
		} else if s := strings.TrimSpace(string(b)); s == "" {
			p.add(key, fmt.Errorf("%s is empty", con.APITokenFile))
		} else {
			con.APIToken = NewSecret(s)
		}
		c.Consoles[name] = con
	}
	files := []struct {
		key    string
		path   *string
		secret bool
	}{
		{"nats.creds_file", &c.NATS.CredsFile, true},
		{"nats.nkey_file", &c.NATS.NKeyFile, true},
		{"nats.tls.ca_file", &c.NATS.TLS.CAFile, false},
		{"nats.tls.cert_file", &c.NATS.TLS.CertFile, false},
		{"nats.tls.key_file", &c.NATS.TLS.KeyFile, true},
	}
	for _, f := range files {
		if *f.path == "" {
			continue
		}
		*f.path = resolve(*f.path)
		var err error
		if f.secret {
			_, err = c.readSecretFile(f.key, *f.path)
		} else {
			_, err = readFile(*f.path)
		}
		if err != nil {
			p.add(f.key, err)
		}
	}
}

// maxFile bounds the files read at load: tokens, keys and certificates are
// small, and a mistaken path to a large file should not be read whole.
const maxFile = 1 << 20

// readSecretFile reads a file holding a secret and warns (under key) when
// its mode lets group or others read it.
func (c *Config) readSecretFile(key, path string) ([]byte, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	// Windows has no such mode bits; os reports 0666 for every file.
	if fi, err := os.Stat(path); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o044 != 0 {
		c.warnings = append(c.warnings, fmt.Sprintf("%s: %s is readable by group or others (mode %04o): chmod 600 it", key, path, fi.Mode().Perm()))
	}
	return b, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() && fi.Mode()&os.ModeNamedPipe == 0 {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxFile)
	}
	return b, nil
}

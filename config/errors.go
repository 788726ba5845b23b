package config

import (
	"cmp"
	"errors"
	"slices"
)

var (
	// ErrInvalid is matched by errors.Is on every problem with the
	// configuration's content ([*FieldError]). A file that cannot be read or
	// parsed as YAML is reported as such, not as ErrInvalid.
	ErrInvalid = errors.New("invalid configuration")
	// ErrUnknownKey is the cause of a [*FieldError] for a key that the
	// Config struct does not have: usually a typo.
	ErrUnknownKey = errors.New("unknown key")
)

// FieldError is one problem with one configuration key. Its message reads
// "key: problem", or "key (S1BRIDGE_VAR): problem" when an environment
// variable set the key, and never contains a secret value.
type FieldError struct {
	// Key is the dotted key path, e.g. consoles.main.url.
	Key string
	// Env is the environment variable that set Key, if one did.
	Env string
	// Err is the problem.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string {
	if e.Env != "" {
		return e.Key + " (" + e.Env + "): " + e.Err.Error()
	}
	return e.Key + ": " + e.Err.Error()
}

// Unwrap returns the problem, so errors.Is(err, ErrUnknownKey) works.
func (e *FieldError) Unwrap() error { return e.Err }

// Is reports true for ErrInvalid: every FieldError is one.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// problems collects FieldErrors while a check goes on, so that all of them
// are reported at once.
type problems []*FieldError

func (p *problems) add(key string, err error) {
	*p = append(*p, &FieldError{Key: key, Err: err})
}

func (p *problems) addf(key, msg string) { p.add(key, errors.New(msg)) }

// err returns the problems sorted by key, then message, without duplicates,
// as one error, or nil.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	sorted := slices.Clone(p)
	slices.SortFunc(sorted, func(a, b *FieldError) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Error(), b.Error()))
	})
	sorted = slices.CompactFunc(sorted, func(a, b *FieldError) bool { return a.Error() == b.Error() })
	errs := make([]error, len(sorted))
	for i, fe := range sorted {
		errs[i] = fe
	}
	return errors.Join(errs...)
}

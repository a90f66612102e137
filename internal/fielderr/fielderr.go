// Package fielderr declares Error, the one error type the Validate method
// of every policy Config (retry, ratelimit, breaker and discovery) returns:
// one *Error per problem, joined with errors.Join. Each of those packages
// exports it under its own name (type FieldError = fielderr.Error), and the
// process's config check reads the problems back with Each, so no caller
// has to parse an error's text to learn which key is at fault.
package fielderr

import "errors"

// Error is one problem of a config section, naming the yaml key at fault.
type Error struct {
	// Section, when set, begins the error's text: discovery sets it to
	// "discovery", so its problems read "discovery: static[0]: ...". It is
	// not part of Field: a caller that nests the section under a key path
	// of its own uses Field alone.
	Section string
	// Field is the yaml key path inside the section, with [i] for list
	// items ("budget.ratio", "static[1]"); empty for a problem of the
	// section as a whole, such as a missing discovery source.
	Field string
	// Msg says what is wrong ("must be ≥ 0, got -1s").
	Msg string
}

// Error returns "section: field: msg", leaving out an empty section or field.
func (e *Error) Error() string {
	s := e.Msg
	if e.Field != "" {
		s = e.Field + ": " + s
	}
	if e.Section != "" {
		s = e.Section + ": " + s
	}
	return s
}

// Each calls f once for every problem in err, walking the tree that
// errors.Join builds. A problem that is, or wraps, an *Error gives its
// Field and Msg; any other error gives an empty field and its whole text.
// A nil err calls f never.
func Each(err error, f func(field, msg string)) {
	switch e := err.(type) {
	case nil:
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			Each(inner, f)
		}
	default:
		var fe *Error
		if errors.As(err, &fe) {
			f(fe.Field, fe.Msg)
			return
		}
		f("", err.Error())
	}
}

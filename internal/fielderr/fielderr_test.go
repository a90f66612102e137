package fielderr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/fielderr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestErrorText(t *testing.T) {
	assert.Equal(t, "budget.ratio: must be in [0, 1]",
		(&fielderr.Error{Field: "budget.ratio", Msg: "must be in [0, 1]"}).Error())
	assert.Equal(t, "discovery: static[0]: want host:port",
		(&fielderr.Error{Section: "discovery", Field: "static[0]", Msg: "want host:port"}).Error())
	assert.Equal(t, "discovery: no source",
		(&fielderr.Error{Section: "discovery", Msg: "no source"}).Error())
}

// TestEachWalksJoinedAndWrappedErrors: every problem of a nested
// errors.Join tree is reported once, a wrapped *Error by its fields (the
// wrapper's text never leaks into Msg), any other error by its whole text.
func TestEachWalksJoinedAndWrappedErrors(t *testing.T) {
	err := errors.Join(
		&fielderr.Error{Field: "rps", Msg: "required, must be > 0"},
		errors.Join(
			fmt.Errorf("ratelimit: %w", &fielderr.Error{Field: "burst", Msg: "must be ≥ 0"}),
			errors.New("something else"),
		),
		&fielderr.Error{Section: "discovery", Msg: "no source"},
	)
	type problem struct{ field, msg string }
	var got []problem
	fielderr.Each(err, func(field, msg string) { got = append(got, problem{field, msg}) })
	assert.Equal(t, []problem{
		{"rps", "required, must be > 0"},
		{"burst", "must be ≥ 0"},
		{"", "something else"},
		{"", "no source"},
	}, got)

	fielderr.Each(nil, func(string, string) { t.Fatal("called for a nil error") })
}

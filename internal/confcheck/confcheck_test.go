package confcheck_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/confcheck"
	"github.com/outbound-go/outbound/internal/fielderr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPolicyPlacesEachProblemUnderItsKey: a policy's joined FieldErrors
// land at prefix.field (a section-wide one at prefix itself, with no
// trailing dot), with the line of the nearest known key; an error of
// another type lands at prefix with its whole text; a problem under a key
// the decoder already reported is dropped.
func TestPolicyPlacesEachProblemUnderItsKey(t *testing.T) {
	var ps []confcheck.Problem
	ck := confcheck.Checker{
		Lines: map[string]int{"svc.retry": 4, "svc.retry.budget.ratio": 6},
		Ps:    &ps,
		Bad:   map[string]bool{"svc.retry.hedge": true},
	}
	ck.Policy("svc.retry", errors.Join(
		&fielderr.Error{Field: "budget.ratio", Msg: "must be in [0, 1], got 2"},
		fmt.Errorf("wrapped: %w", &fielderr.Error{Field: "retry_on[1]", Msg: "unknown condition"}),
		&fielderr.Error{Section: "discovery", Msg: "no source"},
		&fielderr.Error{Field: "hedge.delay", Msg: "must be ≥ 0"},
		errors.New("not a field error"),
	))
	assert.Equal(t, []confcheck.Problem{
		{Path: "svc.retry.budget.ratio", Line: 6, Msg: "must be in [0, 1], got 2"},
		{Path: "svc.retry.retry_on[1]", Line: 4, Msg: "unknown condition"},
		{Path: "svc.retry", Line: 4, Msg: "no source"},
		{Path: "svc.retry", Line: 4, Msg: "not a field error"},
	}, ps)
}

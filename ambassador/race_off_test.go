//go:build !race

package ambassador_test

const raceEnabled = false

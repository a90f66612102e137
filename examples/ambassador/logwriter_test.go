package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuf is a bytes.Buffer safe for one writer and concurrent readers,
// counting the Write calls that reach it.
type lockedBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLogWriterKeepsEveryLineWholeAndInOrder(t *testing.T) {
	var out lockedBuf
	lw := newLogWriter(&out)
	const writers, lines = 4, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				n, err := fmt.Fprintf(lw, "w=%d i=%d %s\n", w, i, strings.Repeat("x", i%200))
				assert.NoError(t, err)
				assert.Positive(t, n)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, lw.Close())

	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, got, writers*lines)
	for _, line := range got {
		var w, i int
		var pad string
		_, err := fmt.Sscanf(line, "w=%d i=%d %s", &w, &i, &pad)
		if i%200 == 0 {
			_, err = fmt.Sscanf(line, "w=%d i=%d", &w, &i)
		}
		require.NoError(t, err, line)
		require.Equal(t, next[w], i, "writer %d's lines out of order", w)
		require.Len(t, pad, i%200, line)
		next[w]++
	}
	out.mu.Lock()
	writes := out.writes
	out.mu.Unlock()
	t.Logf("%d lines in %d writes", writers*lines, writes)
}

func TestLogWriterCloseWritesPendingAndPassesLaterWritesThrough(t *testing.T) {
	var out lockedBuf
	lw := newLogWriter(&out)
	_, err := lw.Write([]byte("one\n"))
	require.NoError(t, err)
	require.NoError(t, lw.Close())
	assert.Equal(t, "one\n", out.String(), "Close writes what is pending")
	require.NoError(t, lw.Close(), "a second Close is a no-op")
	_, err = lw.Write([]byte("two\n"))
	require.NoError(t, err)
	assert.Equal(t, "one\ntwo\n", out.String(), "after Close a Write goes straight through")
}

func TestLogWriterBackpressure(t *testing.T) {
	var out lockedBuf
	lw := newLogWriter(&out)
	big := bytes.Repeat([]byte("y"), maxPending)
	_, err := lw.Write(big)
	require.NoError(t, err)
	// Above maxPending the caller writes itself: the bytes are out already.
	assert.Len(t, out.String(), maxPending)
	require.NoError(t, lw.Close())
}

func TestLogWriterPausesOnlyWithMoreThanOneP(t *testing.T) {
	for _, tc := range []struct {
		procs int
		want  time.Duration
	}{{1, 0}, {2, flushDelay}, {8, flushDelay}} {
		assert.Equal(t, tc.want, pauseFor(tc.procs), "GOMAXPROCS %d", tc.procs)
	}
}

func TestLogWriterWithoutPauseWritesEachLineWhenItRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out lockedBuf
		lw := newLogWriterPause(&out, 0)
		defer lw.Close()
		for i := range 3 {
			_, err := fmt.Fprintf(lw, "line %d\n", i)
			require.NoError(t, err)
			synctest.Wait() // the writer goroutine has written the line
		}
		// No clock advance: nothing waits for a timer.
		assert.Equal(t, "line 0\nline 1\nline 2\n", out.String())
		out.mu.Lock()
		defer out.mu.Unlock()
		assert.Equal(t, 3, out.writes, "a line that comes while the writer is idle goes at once")
	})
}

func TestLogWriterWritesAtMostOncePerFlushDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out lockedBuf
		lw := newLogWriterPause(&out, flushDelay)
		defer lw.Close()
		writes := func() int { out.mu.Lock(); defer out.mu.Unlock(); return out.writes }
		for i := range 3 {
			_, err := fmt.Fprintf(lw, "line %d\n", i)
			require.NoError(t, err)
			synctest.Wait() // the writer goroutine has seen the line
		}
		assert.Equal(t, "line 0\n", out.String(), "the first line of an idle writer goes at once, the next ones wait")
		time.Sleep(flushDelay) // the bubble's clock: no real wait
		synctest.Wait()
		assert.Equal(t, "line 0\nline 1\nline 2\n", out.String())
		assert.Equal(t, 2, writes(), "lines 1 and 2 share one write")
	})
}

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

// TestLogWriterCoalescesOneLineAtATime: lines that come one at a time (one
// request at a time: each Write followed by a pause in which the writer's
// goroutine could run) share one write per flushInterval instead of a
// write each, while the first line after a quiet spell goes out at once
// and no line waits longer than flushInterval. In a testing/synctest
// bubble: synctest.Wait lets the goroutine run, time moves only when
// every goroutine is blocked.
func TestLogWriterCoalescesOneLineAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out lockedBuf
		lw := newLogWriter(&out)
		writes := func() int {
			out.mu.Lock()
			defer out.mu.Unlock()
			return out.writes
		}
		line := func(i int) {
			_, err := fmt.Fprintf(lw, "line %d\n", i)
			require.NoError(t, err)
			synctest.Wait()
		}
		line(0)
		require.Equal(t, 1, writes(), "a line after a quiet spell is written at once")
		for i := 1; i <= 100; i++ {
			line(i)
		}
		require.Equal(t, 1, writes(), "lines within flushInterval of a write wait for the next")
		time.Sleep(flushInterval)
		synctest.Wait()
		require.Equal(t, 2, writes(), "after flushInterval the 100 waiting lines go out in one write")
		assert.Equal(t, 101, strings.Count(out.String(), "\n"))

		time.Sleep(10 * flushInterval) // a quiet spell
		line(101)
		assert.Equal(t, 3, writes(), "after a quiet spell a line is written at once again")
		require.NoError(t, lw.Close())
		assert.Equal(t, 102, strings.Count(out.String(), "\n"))
	})
}

// TestLogWriterCloseDoesNotWaitForTheInterval: Close right after a write
// (the goroutine waiting out flushInterval) writes what is pending at once.
func TestLogWriterCloseDoesNotWaitForTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out lockedBuf
		lw := newLogWriter(&out)
		_, err := lw.Write([]byte("one\n"))
		require.NoError(t, err)
		synctest.Wait()
		_, err = lw.Write([]byte("two\n"))
		require.NoError(t, err)
		start := time.Now()
		require.NoError(t, lw.Close())
		assert.Zero(t, time.Since(start), "Close waited for the interval")
		assert.Equal(t, "one\ntwo\n", out.String())
	})
}

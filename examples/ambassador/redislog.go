package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisLog sends go-redis's own messages (its connection pool's "failed to
// dial", written through a package-level logger to stderr by default) to the
// process's logger at Debug level: the rate limiter already logs an outage
// once at Warn, with the address and the timeout.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "), "component", "go-redis")
}

// routeRedisLog installs redisLog; go-redis has one logger per process, so
// this is for main to do, not the library.
func routeRedisLog(l *slog.Logger) { redis.SetLogger(redisLog{l}) }

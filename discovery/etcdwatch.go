package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/outbound-go/outbound/internal/clock"
)

// Backoff between re-lists of the etcd source after a failure.
const (
	etcdRetryMin = 100 * time.Millisecond
	etcdRetryMax = 5 * time.Second
)

// errEtcdWatchClosed is returned when a watch channel closes while the
// source's context is still live.
var errEtcdWatchClosed = errors.New("watch channel closed")

// errEtcdRevisionBack is wrapped by follow's error when etcd answers at a
// revision below one it reported before: a new cluster, or one restored
// from a snapshot without --bump-revision, now behind the address. The
// client resumes its watch at the old revision, which such a store has not
// reached, so nothing would be delivered until it did; the source lists
// again instead.
var errEtcdRevisionBack = errors.New("etcd's revision went back")

// etcdProgressEvery is how often a watch asks etcd for its current
// revision (a progress notification), which is how a store whose revision
// went back is found while no key changes.
const etcdProgressEvery = 10 * time.Second

// Watch implements Source.
func (s *etcdSource) Watch(ctx context.Context, update func([]Endpoint, error)) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   s.cfg.Endpoints,
		DialTimeout: s.cfg.DialTimeout,
		// Keepalive pings find a silently dead connection (the server's
		// default minimum ping interval is 5s).
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: s.cfg.DialTimeout,
		Context:              ctx,
		Logger:               zap.NewNop(), // a library logs nothing of its own
		// grpc's default reconnect backoff grows to 2 minutes; a source
		// should resume within seconds of etcd coming back.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay: etcdRetryMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: etcdRetryMax,
			},
			MinConnectTimeout: s.cfg.DialTimeout,
		})},
	})
	if err != nil { // only a config the client refuses; Validate checks it
		update(nil, fmt.Errorf("discovery: %s: %w", s, err))
		return
	}
	defer cli.Close()
	w := &etcdWatch{src: s, cli: cli, update: update, log: loggerFrom(ctx)}
	w.run(ctx)
}

// etcdWatch is the state of one Watch call.
type etcdWatch struct {
	src    *etcdSource
	cli    *clientv3.Client
	update func([]Endpoint, error)
	log    *slog.Logger

	rev      int64               // the highest revision etcd answered at
	eps      map[string]Endpoint // key -> its endpoint, good values only
	bad      map[string]int64    // key -> mod revision of a bad value logged
	last     []Endpoint          // last reported set, sorted
	reported bool
}

// run lists and watches until ctx ends, re-listing after each watch ends.
func (w *etcdWatch) run(ctx context.Context) {
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(etcdRetryMin),
		backoff.WithMaxInterval(etcdRetryMax),
		backoff.WithMaxElapsedTime(0))
	for ctx.Err() == nil {
		rev, err := w.list(ctx)
		if err == nil {
			err = w.follow(ctx, rev+1, bo)
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			continue // the events since rev are gone: list again at once
		}
		if errors.Is(err, errEtcdRevisionBack) {
			w.log.Warn("discovery: etcd: listing again", "source", w.src.String(), "err", err)
			continue
		}
		w.update(nil, fmt.Errorf("discovery: %s: %w", w.src, err))
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// list reads every key under the prefix, reports the set and returns the
// revision it was read at.
func (w *etcdWatch) list(ctx context.Context) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, w.src.cfg.DialTimeout)
	defer cancel()
	resp, err := w.cli.Get(lctx, w.src.cfg.Prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("list: %w", err)
	}
	w.eps = make(map[string]Endpoint, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		w.put(kv)
	}
	w.report()
	// A listing is the whole truth at its revision, whatever came before.
	w.rev = resp.Header.Revision
	return w.rev, nil
}

// follow watches the prefix from revision from and applies each change. It
// returns why the watch ended; a change seen resets bo. The client resumes a
// watch whose connection was lost on its own, so a lost connection keeps
// this loop waiting, with the last set in place. Every etcdProgressEvery
// (on the Service's clock) it asks etcd for a progress notification, and
// any answer at a revision below the highest seen ends the watch with
// errEtcdRevisionBack.
func (w *etcdWatch) follow(ctx context.Context, from int64, bo backoff.BackOff) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	var progress sync.WaitGroup
	defer progress.Wait()
	defer cancel()
	ch := w.cli.Watch(wctx, w.src.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithProgressNotify())
	clk := clock.FromContext(ctx)
	progress.Go(func() {
		for clk.Sleep(wctx, etcdProgressEvery) == nil {
			// An error (no connection now) is the watch's to report; the
			// next round asks again.
			_ = w.cli.RequestProgress(wctx)
		}
	})
	for resp := range ch {
		if err := resp.Err(); err != nil {
			return err
		}
		if r := resp.Header.Revision; r < w.rev {
			return fmt.Errorf("%w from %d to %d (a new or restored store)", errEtcdRevisionBack, w.rev, r)
		}
		w.rev = resp.Header.Revision
		if resp.IsProgressNotify() {
			continue
		}
		bo.Reset()
		for _, ev := range resp.Events {
			switch ev.Type {
			case mvccpb.PUT:
				w.put(ev.Kv)
			case mvccpb.DELETE: // deleted, or its lease expired or was revoked
				delete(w.eps, string(ev.Kv.Key))
				delete(w.bad, string(ev.Kv.Key))
			}
		}
		w.report()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errEtcdWatchClosed
}

// put records one key's value; a bad one is dropped and logged once per
// revision of the key.
func (w *etcdWatch) put(kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	ep, err := parseEtcdValue(kv.Value)
	if err != nil {
		delete(w.eps, key)
		if w.bad == nil {
			w.bad = make(map[string]int64)
		}
		if w.bad[key] != kv.ModRevision {
			w.bad[key] = kv.ModRevision
			w.log.Warn("discovery: etcd: skipping a key whose value is not an endpoint",
				"key", key, "revision", kv.ModRevision, "err", err)
		}
		return
	}
	delete(w.bad, key)
	w.eps[key] = ep
}

// report passes the current set to update when it differs from the last.
func (w *etcdWatch) report() {
	eps := make([]Endpoint, 0, len(w.eps))
	for _, ep := range w.eps {
		eps = append(eps, ep)
	}
	eps = sortEndpoints(eps)
	if w.reported && sameEndpoints(w.last, eps) {
		return
	}
	w.last, w.reported = eps, true
	w.update(slices.Clone(eps), nil)
}

package breaker

import (
	"context"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

type event struct {
	key      string
	from, to State
}

// record is gobreaker's OnStateChange: it runs under the gobreaker mutex,
// so it only queues the event; flush hands it out.
func (b *Breaker) record(name string, from, to gobreaker.State) {
	b.evMu.Lock()
	b.events = append(b.events, event{key: name, from: fromGobreaker(from), to: fromGobreaker(to)})
	b.pending.Store(true)
	b.evMu.Unlock()
}

// flush emits queued state changes, holding no lock while it does. One
// goroutine drains at a time, so events come out in the order they
// happened; a goroutine that finds another draining leaves its events to it.
func (b *Breaker) flush() {
	for b.pending.Load() {
		if !b.draining.CompareAndSwap(false, true) {
			return
		}
		b.drain()
	}
}

func (b *Breaker) drain() {
	defer b.draining.Store(false)
	for {
		b.evMu.Lock()
		evs := b.events
		b.events = nil
		if len(evs) == 0 {
			b.pending.Store(false)
		}
		b.evMu.Unlock()
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			b.emit(ev)
		}
	}
}

func (b *Breaker) emit(ev event) {
	attrs := []attribute.KeyValue{
		attribute.String("endpoint", ev.key),
		attribute.String("from", ev.from.String()),
		attribute.String("to", ev.to.String()),
	}
	if b.opts.service != "" {
		attrs = append(attrs, attribute.String("service", b.opts.service))
	}
	b.transitions.Add(context.Background(), 1, metric.WithAttributes(attrs...))
	if l := b.opts.logger; l != nil {
		l.Debug("breaker: state changed", "key", ev.key, "from", ev.from.String(), "to", ev.to.String())
	}
	if f := b.opts.onStateChange; f != nil {
		f(ev.key, ev.from, ev.to)
	}
}

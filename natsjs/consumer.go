package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrUnsettled is returned (wrapped) by a natsjs sink when its pipeline ended
// cleanly but some messages taken by a [Source] of that pipeline were never
// settled: a stage lost their items without telling them (for example a core
// stage that maps *Msg to another type). Those messages have been Nak'ed, so
// the server delivers them again; the pipeline has a bug to fix.
var ErrUnsettled = errors.New("natsjs: messages left the pipeline unsettled")

// Consumer is a JetStream pull consumer with the policy that settles its
// messages: where failed and poison messages go (the dead-letter subject),
// how often a failed message is tried ([MaxDeliveries]), how long the server
// waits before delivering it again ([Backoff]), and how many messages a
// [Source] buffers ahead ([Prefetch]). It counts what happens to the messages
// in [Consumer.Stats].
//
// One Consumer may feed several pipelines, one after another or at once;
// several processes (or several Consumers in one process) may share one
// durable consumer on the server, which then spreads the messages among them.
// All methods are safe for concurrent use.
type Consumer struct {
	js         jetstream.JetStream
	cons       jetstream.Consumer
	name       string
	deadLetter string
	maxDeliver int
	backoff    func(delivery int) time.Duration
	prefetch   int
	stats      counters
}

// Option configures a [Consumer] in [NewConsumer].
type Option func(*Consumer)

// MaxDeliveries sets how many times a message is delivered before a failure
// sends it to the dead-letter subject: with n = 3 a failing item is tried
// three times (once per delivery), then dead-lettered. The default is the
// server consumer's MaxDeliver if set, else 5. n must be at least 1 and, if
// the server consumer has a MaxDeliver, at most that (the server would stop
// delivering the message before natsjs could dead-letter it).
func MaxDeliveries(n int) Option {
	return func(c *Consumer) { c.maxDeliver = n }
}

// Backoff sets the delay before a failed message is delivered again, given
// how many times it has been delivered so far (1 after the first failure).
// The default is [DefaultBackoff].
func Backoff(delay func(delivery int) time.Duration) Option {
	return func(c *Consumer) { c.backoff = delay }
}

// Prefetch sets how many messages a [Source] asks the server for ahead of the
// pipeline (the pull batch, nats.go's PullMaxMessages): they wait, un-acked,
// in the client until the pipeline takes them. A larger batch means fewer
// round trips and more throughput; a smaller one fewer messages held when
// the process dies, and less risk that a message waits past AckWait when
// items are slow (keep Prefetch below AckWait × throughput). The default is
// half the consumer's MaxAckPending, at most 500 (nats.go's own default).
func Prefetch(n int) Option {
	return func(c *Consumer) { c.prefetch = n }
}

// DefaultBackoff is the delay before a failed message is delivered again:
// 250ms after the first delivery, doubling with each delivery, at most 30s.
func DefaultBackoff(delivery int) time.Duration {
	const base, ceiling = 250 * time.Millisecond, 30 * time.Second
	if delivery < 1 {
		delivery = 1
	}
	if delivery > 8 {
		return ceiling
	}
	return min(ceiling, base<<(delivery-1))
}

const (
	defaultPrefetch   = 500
	defaultMaxDeliver = 5
	// settleTimeout bounds a dead-letter publish and the wait for a
	// downstream publish's acknowledgement.
	settleTimeout = 30 * time.Second
)

// NewConsumer checks the server consumer cons and returns the natsjs
// Consumer that reads it. cons must be a pull consumer with AckExplicit; the
// dead-letter subject deadLetter must be captured by a stream (else dead
// letters cannot be stored and the messages are Nak'ed instead) and must not
// be one the consumer reads. js publishes the dead letters.
//
// NewConsumer asks the server for the consumer's configuration: an error
// wraps the server's answer (a timeout when the server cannot be reached).
// A bad argument or configuration gives an error wrapping
// [pipeline.ErrInvalidArgument].
func NewConsumer(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, deadLetter string, opts ...Option) (*Consumer, error) {
	if js == nil || cons == nil {
		return nil, invalid("NewConsumer", "nil JetStream or Consumer")
	}
	if deadLetter == "" {
		return nil, invalid("NewConsumer", "empty dead-letter subject")
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsjs: consumer info: %w", err)
	}
	cfg := info.Config
	c := &Consumer{js: js, cons: cons, name: info.Stream + "/" + info.Name, deadLetter: deadLetter,
		maxDeliver: cfg.MaxDeliver, backoff: DefaultBackoff, prefetch: defaultPrefetch}
	if cfg.MaxAckPending > 0 {
		c.prefetch = min(defaultPrefetch, max(1, cfg.MaxAckPending/2))
	}
	if c.maxDeliver <= 0 {
		c.maxDeliver = defaultMaxDeliver
	}
	for _, o := range opts {
		o(c)
	}
	switch {
	case cfg.AckPolicy != jetstream.AckExplicitPolicy:
		return nil, invalid("NewConsumer", fmt.Sprintf("consumer %s must have AckPolicy AckExplicit, has %s", c.name, cfg.AckPolicy))
	case cfg.DeliverSubject != "":
		return nil, invalid("NewConsumer", fmt.Sprintf("consumer %s is a push consumer; natsjs needs a pull consumer", c.name))
	case c.maxDeliver < 1:
		return nil, invalid("NewConsumer", fmt.Sprintf("MaxDeliveries(%d): must be >= 1", c.maxDeliver))
	case cfg.MaxDeliver > 0 && c.maxDeliver > cfg.MaxDeliver:
		return nil, invalid("NewConsumer", fmt.Sprintf("MaxDeliveries(%d) exceeds the consumer's MaxDeliver %d", c.maxDeliver, cfg.MaxDeliver))
	case c.prefetch < 1:
		return nil, invalid("NewConsumer", fmt.Sprintf("Prefetch(%d): must be >= 1", c.prefetch))
	case c.backoff == nil:
		return nil, invalid("NewConsumer", "nil Backoff")
	}
	filters := append([]string{cfg.FilterSubject}, cfg.FilterSubjects...)
	if cfg.FilterSubject == "" && len(cfg.FilterSubjects) == 0 {
		st, err := js.Stream(ctx, info.Stream)
		if err != nil {
			return nil, fmt.Errorf("natsjs: stream info: %w", err)
		}
		filters = st.CachedInfo().Config.Subjects
	}
	for _, f := range filters {
		if f != "" && subjectMatches(f, deadLetter) {
			return nil, invalid("NewConsumer", fmt.Sprintf("dead-letter subject %q is read by consumer %s (filter %q)", deadLetter, c.name, f))
		}
	}
	return c, nil
}

// Stats returns a snapshot of the consumer's counters, summed over every
// [Source] that has read it. Safe at any time, from any goroutine.
func (c *Consumer) Stats() Stats { return c.stats.snapshot() }

// Stats counts what happened to the messages of a [Consumer].
// Once every pipeline reading it has ended cleanly, InFlight is 0 and
// Received = Acked + Retried + Dead + Released + SettleErrors.
type Stats struct {
	// Received counts messages taken from the server; Redelivered those of
	// them that had been delivered before (to this worker or another).
	Received, Redelivered uint64
	// Acked counts messages acknowledged as done: handled by a sink, or set
	// aside on purpose by a stage (Discarded counts those).
	Acked, Discarded uint64
	// Retried counts messages Nak'ed with a delay after a failure, to be
	// delivered again.
	Retried uint64
	// Dead counts messages published to the dead-letter subject and
	// terminated; Poison those of them that could not be decoded.
	Dead, Poison uint64
	// Released counts messages Nak'ed unprocessed, for another worker to take
	// now: fetched but not yet emitted on Stop, or left unsettled by a buggy
	// pipeline (see ErrUnsettled).
	Released uint64
	// Published counts items whose downstream publish the server confirmed
	// (see Publish).
	Published uint64
	// SettleErrors counts acks, naks and terms that could not be sent (the
	// connection was closed): the server delivers those messages again.
	SettleErrors uint64
	// InFlight is the number of messages received and not yet settled
	// (Received less the outcomes above, Discarded and Poison being counted
	// in Acked and Dead).
	InFlight int64
}

// String formats the counters on one line, for logs.
func (s Stats) String() string {
	return fmt.Sprintf("received=%d redelivered=%d acked=%d discarded=%d retried=%d dead=%d poison=%d released=%d published=%d settle_errors=%d in_flight=%d",
		s.Received, s.Redelivered, s.Acked, s.Discarded, s.Retried, s.Dead, s.Poison, s.Released, s.Published, s.SettleErrors, s.InFlight)
}

// counters are a Consumer's counts. The Source's goroutine writes received
// and redelivered for every message, the sinks' goroutines the outcomes:
// they are kept on cache lines of their own, and the number in flight is
// worked out from them rather than counted both ways.
type counters struct {
	// written by the Source
	received, redelivered atomic.Uint64
	_                     [48]byte

	// written by the sinks
	acked, discarded, retried, dead, poison, released, published, settleErrors atomic.Uint64
}

func (k *counters) snapshot() Stats {
	// The outcomes first: each was received before it was settled, so
	// InFlight never goes below 0.
	s := Stats{
		Acked: k.acked.Load(), Discarded: k.discarded.Load(), Retried: k.retried.Load(),
		Dead: k.dead.Load(), Poison: k.poison.Load(), Released: k.released.Load(),
		Published: k.published.Load(), SettleErrors: k.settleErrors.Load(),
	}
	s.Received, s.Redelivered = k.received.Load(), k.redelivered.Load()
	s.InFlight = int64(s.Received - s.Acked - s.Retried - s.Dead - s.Released - s.SettleErrors)
	return s
}

// Connect connects to the NATS server at url and returns the connection
// and its JetStream context. The connection survives a lost server: it
// reconnects forever, every 250ms, buffering what is published meanwhile
// (opts, nats.go's options, come after these defaults and may change them).
// A server that cannot be reached at start, or that has no JetStream, gives
// an error that says so at once: Connect does not wait for it to appear.
func Connect(ctx context.Context, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	all := append([]nats.Option{
		nats.Name("natsjs"),
		nats.Timeout(2 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, nil, fmt.Errorf("natsjs: cannot reach NATS server at %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("natsjs: NATS server at %s has no JetStream: %w", url, err)
	}
	return nc, js, nil
}

func invalid(stage, what string) error {
	return fmt.Errorf("natsjs: %s: %s: %w", stage, what, pipeline.ErrInvalidArgument)
}

// subjectMatches reports whether subject is matched by filter, a subject
// that may hold the wildcards * (one token) and > (the rest).
func subjectMatches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}

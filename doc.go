// Package pipeline builds concurrent data pipelines from typed, composable
// stages joined by channels: sources, worker pools (fan-out, ordered or not,
// or in order per key), filters, fan-in, splitting, buffering, load shedding,
// rate limits (for all items or per key), batching and sinks, all obeying one
// shared context and reporting to one place.
//
// # The model
//
// A [*Pipeline] is a context, a slot for the first failure and a record of
// every goroutine its stages start. Each stage function takes the pipeline and
// one or more input channels and returns its output channel(s), so stages
// chain like Unix pipes, and a sink at the end consumes the last output and
// returns the pipeline's result:
//
//	p := pipeline.New(ctx)
//	nums := pipeline.Generate(p, 1, 2, 3, 4, 5)
//	sq := pipeline.FanOut(p, nums, 3, func(ctx context.Context, n int) (int, error) {
//		return n * n, nil
//	})
//	big := pipeline.Filter(p, sq, func(n int) bool { return n > 10 })
//	out, err := pipeline.Collect(p, big) // [16 25] in some order, nil
//
// Who closes channels: every stage closes its own output(s), exactly once,
// when it is done (its input closed, or the pipeline was cancelled). Never
// close a channel a stage returned. A channel made outside the pipeline may
// be any stage's input: the stage reads it as [FromChan] would (giving up on
// cancel; on [Pipeline.Stop], delivering what it took and leaving the rest in
// the channel) and never closes it.
//
// Concurrency: a stage with workers runs that many goroutines calling the
// user's function; stages without a workers argument run one goroutine.
// Outputs are buffered ([DefaultBuffer], [BufferSize]), so a stage may run a
// few items ahead of the next; a full output blocks the stage (backpressure)
// unless the stage is [DropOnFull]. A [Limiter] given with [Limit] caps the
// calls of every stage that shares it; one made with [NewAdaptiveLimiter]
// finds that cap by itself, from the latency and failures of the calls: give
// such a stage as many workers as the limiter's max, and the workers above
// the current limit wait, parked, until it grows.
//
// # Buffers
//
// Every output holds [DefaultBufferSize] items unless [DefaultBuffer] or
// [BufferSize] says otherwise; with either option a stage gets exactly what
// it says. Without them, two cases get more room. A stage with more
// workers than DefaultBufferSize has a slot per worker (within 64 KiB of
// items), so that its workers can hand over their results while their
// reader waits for a processor. And a source ([Generate], [FromSeq],
// [FromChan], [Produce], the readers) whose output is read by a stage with
// more workers than the output has slots ([FanOut], [FlatMap], [ForEach];
// not [FanOutOrdered]) runs up to one item per worker further ahead, in a
// queue beside its channel that the stage reads after the channel, in the
// order the items were sent. Without it, hundreds of workers woken together (by their I/O)
// find the channel empty while the source waits for a processor to refill
// it one slot at a time. [StageStats] counts that queue in the source's
// QueueLen and QueueCap; [Pipeline.Stop] drains it like the channel.
//
// Buffers trade latency for throughput, and a busy source is paced so that
// it pays little of that latency. A source whose own code works between its
// emits ([Produce], [FromSeq], the readers; on average 2 µs or more apart)
// yields its processor after each emit, so the stage it woke runs at once.
// And while an item it sent is still untaken or waits in an output
// downstream (one a stage reads), it holds back, as the sender of an
// unbuffered channel would, until a stage takes an item or 1 ms has
// passed. Without that, a producer that emits in bursts fills the buffer
// with each burst, and a stage stalled for a moment (its goroutine waiting
// for a processor) has the items pile up behind it for milliseconds.
// Behind a producer that spins 20 µs between items, through three stages,
// bench/ measures a p99 of 18 µs against 1.4 ms unpaced. A source that
// spends more than a quarter of its time holding back (its stages are
// slower than it) stops for a while and fills its buffer instead. A source
// given [BufferSize], or on a pipeline given DefaultBuffer, only yields:
// it runs ahead by what it asked for. Give a busy source BufferSize when
// throughput is what counts and its stages are about as slow as it is:
// held back, it and they tend to run in turn (bench/ measures up to a
// quarter slower). DefaultBuffer(0) makes every stage
// unbuffered; it makes a pipeline that runs flat out five to six times
// slower.
//
// # Errors
//
// The first failure wins: a user function's error (as a [*StageError] naming
// the stage and item), a panic (a [*PanicError] inside the StageError), the
// parent context ending, or an invalid argument ([ErrInvalidArgument]). It
// cancels the pipeline's context with that cause, every stage stops and closes
// its output, and every sink and [Pipeline.Wait] return it. Errors that
// follow from the cancellation are not reported. [OnError] can skip failed
// items instead (they are counted), and [Retry] and [Timeout] wrap each call.
//
// For more (docs/failures.md, "Handling failures"): [DeadLetters] send the
// failed items, typed, with their error and attempts, to an output of their
// own; [CollectErrors] runs everything to the end and returns every failure;
// [Permanent], [RetryIf] and [RetryBudget] retry only what can succeed;
// [StrictTimeout] refuses late results; a [CircuitBreaker] ([Breaker]) fails
// fast while a downstream is down; [AllErr] ranges over results and the
// pipeline's error.
//
// # Ending
//
// A pipeline ends in one of three ways. Its sources run out and every item
// reaches the sink: Wait returns nil. [Pipeline.Stop] drains it: sources stop
// emitting and every item already emitted still reaches the sink, and Wait
// returns nil. Cancellation (the parent context, a failure, or
// [Pipeline.Shutdown] running out of time) is a hard stop: items in flight
// are discarded, and Wait returns the cause. A sink that ends early on
// purpose ([First], breaking out of a range over [All]) cancels the rest
// without it being a failure. In every case, when Wait (or a sink) returns,
// no goroutine of the pipeline is left.
//
// [Pipeline.Stats] reports per-stage counters at any time, and
// [Pipeline.Diagram] draws the pipeline.
package pipeline

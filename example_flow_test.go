package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ec0f1147/pipeline"
)

func ExampleBuffer() {
	p := pipeline.New(context.Background())
	nums := pipeline.Generate(p, 1, 2, 3, 4, 5)
	// The source may run up to 64 items ahead of a slow consumer.
	buffered := pipeline.Buffer(p, nums, 64)
	out, err := pipeline.Collect(p, buffered)
	fmt.Println(out, err)
	fmt.Println("queue capacity:", p.Stats()[1].QueueCap)
	// Output:
	// [1 2 3 4 5] <nil>
	// queue capacity: 64
}

func ExampleDropOnFull() {
	p := pipeline.New(context.Background())
	offered := make(chan struct{})
	events := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		defer close(offered)
		for i := 1; i <= 10; i++ {
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	}, pipeline.BufferSize(0)) // emit returns once DropOnFull took the item
	// Keep at most three events waiting for the consumer; shed the rest.
	latest := pipeline.DropOnFull(p, events, 3)

	<-offered // a consumer that was busy while all ten arrived
	got, err := pipeline.Collect(p, latest)
	st := p.Stats()[1]
	fmt.Println("first kept:", got[:3], "error:", err)
	fmt.Println("in:", st.In, "out+dropped:", st.Out+st.Dropped)
	// Output:
	// first kept: [1 2 3] error: <nil>
	// in: 10 out+dropped: 10
}

func ExampleThrottle() {
	p := pipeline.New(context.Background())
	start := time.Now()
	// One item per 10ms: the classic ticker-limited stage.
	slow := pipeline.Throttle(p, pipeline.Generate(p, "a", "b", "c"), 10*time.Millisecond, 1)
	out, err := pipeline.Collect(p, slow)
	fmt.Println(out, err)
	fmt.Println("took at least 20ms:", time.Since(start) >= 20*time.Millisecond)
	// Output:
	// [a b c] <nil>
	// took at least 20ms: true
}

func ExampleBatch() {
	p := pipeline.New(context.Background())
	rows := pipeline.Generate(p, 1, 2, 3, 4, 5, 6, 7)
	// Groups of three, or whatever arrived within a second of a group's
	// first item; the last partial group is sent when the input closes.
	batches := pipeline.Batch(p, rows, 3, time.Second)
	out, err := pipeline.Collect(p, batches)
	fmt.Println(out, err)
	// Output:
	// [[1 2 3] [4 5 6] [7]] <nil>
}

func ExampleUnbatch() {
	p := pipeline.New(context.Background())
	pages := pipeline.Generate(p, []string{"a", "b"}, []string{"c"}, []string{"d", "e", "f"})
	out, err := pipeline.Collect(p, pipeline.Unbatch(p, pages))
	fmt.Println(out, err)
	// Output:
	// [a b c d e f] <nil>
}

func ExampleNewLimiter() {
	// Two stages with eight workers each, but never more than two calls to
	// the backend at once between them.
	backend := pipeline.NewLimiter(2)
	var running, peak atomic.Int64
	call := func(_ context.Context, n int) (int, error) {
		now := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
		}
		time.Sleep(time.Millisecond)
		return n + 1, nil
	}

	p := pipeline.New(context.Background())
	a := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3, 4, 5, 6), 8, call, pipeline.Limit(backend))
	b := pipeline.FanOut(p, a, 8, call, pipeline.Limit(backend))
	sum, err := pipeline.Reduce(p, b, 0, func(acc, n int) int { return acc + n })
	fmt.Println(sum, err)
	fmt.Println("at most two at once:", peak.Load() <= 2)
	// Output:
	// 33 <nil>
	// at most two at once: true
}

func ExampleLimiter_SetLimit() {
	l := pipeline.NewLimiter(2)
	l.SetLimit(8) // more room: waiting calls start at once
	fmt.Println(l.Limit())
	l.SetLimit(0) // ignored: a limiter never drops to zero slots
	fmt.Println(l.Limit())
	// Output:
	// 8
	// 8
}

func ExampleLimiter_Limit() {
	l := pipeline.NewLimiter(4)
	fmt.Println(l.Limit())
	// Output:
	// 4
}

func ExampleLimiter_InUse() {
	l := pipeline.NewLimiter(4)
	p := pipeline.New(context.Background())
	err := pipeline.ForEach(p, pipeline.Generate(p, "job"), 1, func(_ context.Context, s string) error {
		fmt.Println(s, "holds", l.InUse(), "slot")
		return nil
	}, pipeline.Limit(l))
	fmt.Println("after:", l.InUse(), err)
	// Output:
	// job holds 1 slot
	// after: 0 <nil>
}

func ExampleLimit() {
	db := pipeline.NewLimiter(1) // one query at a time, whatever the workers
	p := pipeline.New(context.Background())
	ids := pipeline.Generate(p, 3, 1, 2)
	rows := pipeline.FanOutOrdered(p, ids, 4, func(_ context.Context, id int) (string, error) {
		return fmt.Sprintf("row%d", id), nil
	}, pipeline.Limit(db))
	out, err := pipeline.Collect(p, rows)
	fmt.Println(out, err)
	// Output:
	// [row3 row1 row2] <nil>
}

func ExampleWeighted() {
	// A memory budget of 100 MB: each file holds its size in slots while it
	// is parsed, so big files run fewer at a time.
	mem := pipeline.NewLimiter(100)
	type file struct {
		name string
		mb   int
	}
	parse := func(_ context.Context, f file) (string, error) {
		return fmt.Sprintf("%s(%d)", f.name, f.mb), nil
	}
	p := pipeline.New(context.Background())
	files := pipeline.Generate(p, file{"a", 60}, file{"b", 30}, file{"c", 90}, file{"d", 500})
	out, err := pipeline.Collect(p, pipeline.FanOutOrdered(p, files, 4,
		pipeline.Weighted(mem, func(f file) int { return f.mb }, parse),
		pipeline.OnError(func(se *pipeline.StageError) error {
			fmt.Println("skipped:", errors.Is(se, pipeline.ErrInvalidArgument), se.Item)
			return nil // a file bigger than the budget can never run: skip it
		})))
	fmt.Println(out, err)
	// Output:
	// skipped: true {d 500}
	// [a(60) b(30) c(90)] <nil>
}

func ExampleTimeout() {
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, "slow"), 1, func(ctx context.Context, s string) (string, error) {
		<-ctx.Done() // a call that would hang without its deadline
		return "", ctx.Err()
	}, pipeline.Timeout(10*time.Millisecond), pipeline.Name("fetch"))
	_, err := pipeline.Collect(p, out)
	var se *pipeline.StageError
	fmt.Println(errors.Is(err, context.DeadlineExceeded), errors.As(err, &se), se.Stage, se.Item)
	// Output:
	// true true fetch slow
}

func ExampleRetry() {
	calls := 0
	flaky := func(_ context.Context, n int) (int, error) {
		calls++
		if calls < 3 {
			return 0, errors.New("temporarily unavailable")
		}
		return n * 10, nil
	}
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, 4), 1, flaky,
		pipeline.Retry(5, func(attempt int) time.Duration { return time.Duration(attempt) * time.Millisecond }))
	got, err := pipeline.Collect(p, out)
	fmt.Println(got, err, "retries:", p.Stats()[1].Retries)
	// Output:
	// [40] <nil> retries: 2
}

func ExampleDefaultBackoff() {
	for attempt := 1; attempt <= 8; attempt += 3 {
		ceiling := min(5*time.Second, 50*time.Millisecond<<(attempt-1))
		d := pipeline.DefaultBackoff(attempt)
		fmt.Printf("before attempt %d: wait in [0, %v): %v\n", attempt+1, ceiling, d >= 0 && d < ceiling)
	}
	// Output:
	// before attempt 2: wait in [0, 50ms): true
	// before attempt 5: wait in [0, 400ms): true
	// before attempt 8: wait in [0, 3.2s): true
}

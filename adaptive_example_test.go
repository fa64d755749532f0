package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ec0f1147/pipeline"
)

func ExampleNewAdaptiveLimiter() {
	// The pattern: a stage of max workers under an adaptive limiter. Here
	// the backend first answers "overloaded" to everything, then recovers.
	errOverloaded := errors.New("overloaded")
	healthy := false
	backend := func(_ context.Context, id int) (int, error) {
		if !healthy {
			return 0, errOverloaded
		}
		time.Sleep(time.Millisecond)
		return id, nil
	}
	db := pipeline.NewAdaptiveLimiter(2, 16, pipeline.AIMD{})
	db.SetLimit(16) // start at 16 rather than at min

	run := func(n int) error {
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, ints(n + 1)[1:]...), 16, backend, pipeline.Limit(db),
			pipeline.OnError(func(*pipeline.StageError) error { return nil })) // skip failures
		_, err := pipeline.Collect(p, out)
		return err
	}
	err := run(400) // every call fails: the limit backs off to its min
	fmt.Println("limit", db.Limit(), err)
	healthy = true
	err = run(200) // every call succeeds: it grows again
	fmt.Println("grew:", db.Limit() > 2, err)
	// Output:
	// limit 2 <nil>
	// grew: true <nil>
}

func ExampleLimiter_Adjustments() {
	// One worker, every call failing: each failure halves the limit.
	l := pipeline.NewAdaptiveLimiter(1, 4, pipeline.AIMD{Backoff: 0.5})
	l.SetLimit(4)
	p := pipeline.New(context.Background())
	err := pipeline.ForEach(p, pipeline.Generate(p, 1, 2, 3), 1, func(context.Context, int) error {
		return errors.New("timeout")
	}, pipeline.Limit(l), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	fmt.Println(err)
	for _, a := range l.Adjustments() {
		fmt.Println(a.From, "→", a.To, a.Reason)
	}
	// Output:
	// <nil>
	// 1 → 4 set
	// 4 → 2 failure
	// 2 → 1 failure
}

func ExampleLimiter_InFlight() {
	// A weighted call holds several slots but is one call in flight.
	l := pipeline.NewLimiter(10)
	parse := pipeline.Weighted(l, func(mb int) int { return mb }, func(_ context.Context, mb int) (int, error) {
		fmt.Println("in use", l.InUse(), "in flight", l.InFlight())
		return mb, nil
	})
	_, err := parse(context.Background(), 6)
	fmt.Println(err)
	// Output:
	// in use 6 in flight 1
	// <nil>
}

func ExampleLimiter_Waiting() {
	// Eight workers, two slots: six workers wait, parked, for a slot.
	l := pipeline.NewLimiter(2)
	release := make(chan struct{})
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, ints(8 + 1)[1:]...), 8, func(_ context.Context, v int) (int, error) {
		<-release
		return v, nil
	}, pipeline.Limit(l))
	for l.InFlight() < 2 || l.Waiting() < 6 {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("in flight", l.InFlight(), "waiting", l.Waiting())
	close(release)
	got, err := pipeline.Collect(p, out)
	fmt.Println(len(got), err, l.Waiting())
	// Output:
	// in flight 2 waiting 6
	// 8 <nil> 0
}

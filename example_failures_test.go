package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ec0f1147/pipeline"
)

// errGone stands for an error no retry can cure, such as an HTTP 404.
var errGone = errors.New("gone")

// fetch stands for a call to a flaky service: item 3 is gone for good, item
// 5 always fails, the rest succeed.
func fetch(_ context.Context, id int) (string, error) {
	switch id {
	case 3:
		return "", pipeline.Permanent(errGone)
	case 5:
		return "", errors.New("unavailable")
	}
	return fmt.Sprintf("page %d", id), nil
}

func ExampleNewDeadLetters() {
	p := pipeline.New(context.Background())
	dead := pipeline.NewDeadLetters[int](p, 10)
	pages := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3, 4, 5), 2, fetch,
		pipeline.Name("fetch"), pipeline.Retry(3, func(int) time.Duration { return 0 }), dead.Option())
	got, err := pipeline.Collect(p, pages)
	sort.Strings(got)
	fmt.Println(got, err)
	for l := range dead.Out() { // closed: every stage feeding it has ended
		fmt.Printf("%d failed in %s after %d attempt(s): %v\n", l.Item, l.Stage, l.Attempts, l.Err)
	}
	// Unordered output:
	// [page 1 page 2 page 4] <nil>
	// 3 failed in fetch after 1 attempt(s): gone
	// 5 failed in fetch after 3 attempt(s): unavailable
}

func ExampleDeadLetters_Out() {
	p := pipeline.New(context.Background())
	dead := pipeline.NewDeadLetters[int](p, 0) // unbuffered: read it concurrently
	done := make(chan []int)
	go func() {
		var failed []int
		for l := range dead.Out() {
			failed = append(failed, l.Item)
		}
		sort.Ints(failed)
		done <- failed
	}()
	err := pipeline.ForEach(p, pipeline.Generate(p, 1, 2, 3, 4, 5), 3, func(ctx context.Context, id int) error {
		_, err := fetch(ctx, id)
		return err
	}, dead.Option())
	fmt.Println(<-done, err)
	// Output: [3 5] <nil>
}

func ExampleDeadLetters_Option() {
	p := pipeline.New(context.Background())
	dead := pipeline.NewDeadLetters[int](p, 0)
	pages := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3, 4, 5), 2, fetch, dead.Option())
	// The dead letters feed a second stage of the same pipeline: a fallback.
	fallback := pipeline.FanOut(p, dead.Out(), 1, func(_ context.Context, l pipeline.DeadLetter[int]) (string, error) {
		return fmt.Sprintf("cached %d", l.Item), nil
	})
	got, err := pipeline.Collect(p, pipeline.Merge(p, pages, fallback))
	sort.Strings(got)
	fmt.Println(got, err)
	// Output: [cached 3 cached 5 page 1 page 2 page 4] <nil>
}

func ExampleCollectErrors() {
	p := pipeline.New(context.Background(), pipeline.CollectErrors())
	pages := pipeline.FanOut(p, pipeline.Generate(p, 5, 4, 3, 2, 1), 3, fetch, pipeline.Name("fetch"))
	got, err := pipeline.Collect(p, pages)
	fmt.Println(len(got), "pages")
	fmt.Println(err) // every failure, by stage, then text
	fmt.Println(errors.Is(err, errGone))
	// Output:
	// 3 pages
	// pipeline: stage fetch: gone
	// pipeline: stage fetch: unavailable
	// true
}

func ExamplePermanent() {
	p := pipeline.New(context.Background())
	calls := 0
	err := pipeline.ForEach(p, pipeline.Generate(p, 3), 1, func(ctx context.Context, id int) error {
		calls++
		_, err := fetch(ctx, id) // Permanent(errGone)
		return err
	}, pipeline.Retry(5, nil))
	fmt.Println(calls, errors.Is(err, errGone))
	// Output: 1 true
}

func ExampleIsPermanent() {
	err := fmt.Errorf("get /x: %w", pipeline.Permanent(errGone))
	fmt.Println(pipeline.IsPermanent(err), pipeline.IsPermanent(errGone), errors.Is(err, errGone))
	// Output: true false true
}

func ExampleRetryIf() {
	errThrottled := errors.New("throttled")
	p := pipeline.New(context.Background())
	attempts := map[int]int{}
	err := pipeline.ForEach(p, pipeline.Generate(p, 1, 2), 1, func(_ context.Context, id int) error {
		attempts[id]++
		if id == 1 {
			return errThrottled
		}
		return errGone
	}, pipeline.Retry(3, func(int) time.Duration { return 0 }),
		pipeline.RetryIf(func(err error) bool { return errors.Is(err, errThrottled) }),
		pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	fmt.Println(attempts, err)
	// Output: map[1:3 2:1] <nil>
}

func ExampleRetryBudget() {
	p := pipeline.New(context.Background())
	// Every call fails; Retry alone would make 4 calls per item, 400 in all.
	err := pipeline.ForEach(p, pipeline.FromSeq(p, slices.Values(make([]int, 100))), 1,
		func(context.Context, int) error { return errors.New("down") },
		pipeline.Name("call"), pipeline.Retry(4, func(int) time.Duration { return 0 }),
		pipeline.RetryBudget(0.1, 5), // at most 5 + 10% of the calls
		pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	st := p.Stats()[1]
	fmt.Println(err, st.Retries <= 5+10, st.Errors)
	// Output: <nil> true 100
}

func ExampleStrictTimeout() {
	slow := func(_ context.Context, v int) (int, error) {
		time.Sleep(20 * time.Millisecond) // ignores its context
		return v, nil
	}
	p := pipeline.New(context.Background())
	_, err := pipeline.Collect(p, pipeline.FanOut(p, pipeline.Generate(p, 1), 1, slow,
		pipeline.Timeout(time.Millisecond), pipeline.StrictTimeout()))
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output: true
}

func ExampleBreaker() {
	b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Failures: 2, Window: time.Minute, CoolDown: time.Minute})
	p := pipeline.New(context.Background())
	calls := 0
	err := pipeline.ForEach(p, pipeline.Generate(p, 1, 2, 3, 4, 5), 1, func(context.Context, int) error {
		calls++
		return errors.New("unavailable")
	}, pipeline.Breaker(b), pipeline.Name("call"), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	st := p.Stats()[1]
	fmt.Println(err, calls, st.Rejected, st.Breaker)
	// Output: <nil> 2 3 open
}

func ExampleNewCircuitBreaker() {
	b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{
		Ratio: 0.5, MinCalls: 10, // half of at least 10 calls failed…
		Window:    30 * time.Second, // …in the last 30 s
		CoolDown:  5 * time.Second,  // then fail fast for 5 s, and probe
		IsFailure: func(err error) bool { return !pipeline.IsPermanent(err) },
	})
	fmt.Println(b.State())
	// Output: closed
}

func ExampleCircuitBreaker_State() {
	b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Failures: 1, Window: time.Minute, CoolDown: 300 * time.Millisecond})
	p := pipeline.New(context.Background())
	_ = pipeline.ForEach(p, pipeline.Generate(p, 1), 1, func(context.Context, int) error { return errors.New("down") },
		pipeline.Breaker(b), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	fmt.Println(b.State())
	time.Sleep(600 * time.Millisecond)
	fmt.Println(b.State()) // the next call is the probe
	// Output:
	// open
	// half-open
}

func ExampleCircuitBreaker_Counts() {
	b := pipeline.NewCircuitBreaker(pipeline.BreakerConfig{Failures: 1, Window: time.Minute, CoolDown: time.Minute})
	p := pipeline.New(context.Background())
	_ = pipeline.ForEach(p, pipeline.Generate(p, 1, 2, 3), 1, func(context.Context, int) error { return errors.New("down") },
		pipeline.Breaker(b), pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	fmt.Printf("%+v\n", b.Counts())
	// Output: {Opened:1 HalfOpened:0 Closed:0 Rejected:2}
}

func ExampleBreakerState_String() {
	fmt.Println(pipeline.BreakerClosed, pipeline.BreakerOpen, pipeline.BreakerHalfOpen)
	// Output: closed open half-open
}

func ExampleAllErr() {
	p := pipeline.New(context.Background())
	for page, err := range pipeline.AllErr(p, pipeline.FanOutOrdered(p, pipeline.Generate(p, 1, 2, 3, 4), 1, fetch)) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Println(page)
	}
	// Output:
	// page 1
	// page 2
	// error: pipeline: stage fanoutordered#2: gone
}

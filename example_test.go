package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec0f1147/pipeline"
)

// Square five numbers on three workers and keep the big ones.
func Example() {
	p := pipeline.New(context.Background())
	nums := pipeline.Generate(p, 1, 2, 3, 4, 5)
	sq := pipeline.FanOut(p, nums, 3, func(_ context.Context, n int) (int, error) {
		return n * n, nil
	})
	big := pipeline.Filter(p, sq, func(n int) bool { return n > 10 })
	out, err := pipeline.Collect(p, big)

	slices.Sort(out) // FanOut sends results in completion order
	fmt.Println(out, err)
	// Output: [16 25] <nil>
}

func ExampleNew() {
	// Every stage obeys the context given to New: here, a one-minute budget.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p := pipeline.New(ctx)
	words := pipeline.Generate(p, "go", "gopher", "channel")
	lengths := pipeline.FanOutOrdered(p, words, 2, func(_ context.Context, w string) (int, error) {
		return len(w), nil
	})
	got, err := pipeline.Collect(p, lengths)
	fmt.Println(got, err)
	// Output: [2 6 7] <nil>
}

func ExampleDefaultBuffer() {
	// Every stage output of this pipeline holds at most 4 items.
	p := pipeline.New(context.Background(), pipeline.DefaultBuffer(4))
	nums := pipeline.Generate(p, 1, 2, 3)
	fmt.Println("capacity:", cap(nums))
	fmt.Println(pipeline.Drain(p, nums))
	// Output:
	// capacity: 4
	// <nil>
}

func ExamplePipeline_Context() {
	p := pipeline.New(context.Background())
	nums := pipeline.FanOut(p, pipeline.Generate(p, "1", "2", "x"), 1,
		func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) })
	err := pipeline.Drain(p, nums)

	// The pipeline's context is done at the first failure, with it as the cause.
	<-p.Context().Done()
	fmt.Println(context.Cause(p.Context()) == err)
	fmt.Println(err)
	// Output:
	// true
	// pipeline: stage fanout#2: strconv.Atoi: parsing "x": invalid syntax
}

func ExamplePipeline_Wait() {
	p := pipeline.New(context.Background())
	doubled := pipeline.FanOutOrdered(p, pipeline.Generate(p, 1, 2, 3), 2,
		func(_ context.Context, n int) (int, error) { return 2 * n, nil })

	// Read the last output by hand, then ask the pipeline how it ended.
	for n := range doubled {
		fmt.Println(n)
	}
	fmt.Println(p.Wait())
	// Output:
	// 2
	// 4
	// 6
	// <nil>
}

func ExamplePipeline_Stop() {
	p := pipeline.New(context.Background())
	ticks := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := 1; ; i++ {
			if err := emit(i); err != nil {
				return err // ErrStopped after Stop: a clean end
			}
		}
	})

	received, last := 0, 0
	for n := range ticks {
		received++
		last = n
		if n == 5 {
			p.Stop() // the source stops; what it already emitted still arrives
		}
	}
	fmt.Println("at least 5:", received >= 5)
	fmt.Println("none lost:", received == last)
	fmt.Println(p.Wait())
	// Output:
	// at least 5: true
	// none lost: true
	// <nil>
}

func ExamplePipeline_Shutdown() {
	p := pipeline.New(context.Background())
	var emitted atomic.Int64
	events := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return err
			}
			emitted.Add(1)
		}
	})
	warm := make(chan struct{})
	var once sync.Once
	handled := pipeline.FanOut(p, events, 4, func(_ context.Context, n int) (int, error) {
		if n == 100 {
			once.Do(func() { close(warm) })
		}
		return n, nil
	})
	count := make(chan int)
	go func() {
		n, _ := pipeline.Reduce(p, handled, 0, func(c, _ int) int { return c + 1 })
		count <- n
	}()
	<-warm

	// Stop the source and let the in-flight events finish, within 5 seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("shutdown:", p.Shutdown(ctx))
	fmt.Println("every event handled:", int64(<-count) == emitted.Load())
	// Output:
	// shutdown: <nil>
	// every event handled: true
}

func ExamplePipeline_Stats() {
	p := pipeline.New(context.Background())
	evens := pipeline.Filter(p, pipeline.Generate(p, 1, 2, 3, 4, 5, 6),
		func(n int) bool { return n%2 == 0 }, pipeline.Name("evens"))
	if err := pipeline.Drain(p, evens); err != nil {
		fmt.Println(err)
	}
	for _, s := range p.Stats() {
		fmt.Printf("%s (%s): in %d, out %d, dropped %d\n", s.Name, s.Kind, s.In, s.Out, s.Dropped)
	}
	// Output:
	// generate#1 (generate): in 6, out 6, dropped 0
	// evens (filter): in 6, out 3, dropped 3
}

func ExamplePipeline_Diagram() {
	p := pipeline.New(context.Background(), pipeline.DefaultBuffer(8))
	nums := pipeline.Generate(p, 1, 2, 3, 4)
	sq := pipeline.FanOut(p, nums, 2, func(_ context.Context, n int) (int, error) {
		return n * n, nil
	}, pipeline.Name("square"))
	odd := pipeline.Filter(p, sq, func(n int) bool { return n%2 == 1 })
	if err := pipeline.Drain(p, odd); err != nil {
		fmt.Println(err)
	}
	fmt.Print(p.Diagram())
	// Output:
	// flowchart LR
	//     s1["<b>generate#1</b><br/>generate · 1 worker<br/>in 4 · out 4"]
	//     s2["<b>square</b><br/>fanout · 2 workers<br/>in 4 · out 4"]
	//     s3["<b>filter#3</b><br/>filter · 1 worker<br/>in 4 · out 2 · dropped 2"]
	//     s1 -->|"0/8"| s2
	//     s2 -->|"0/8"| s3
}

// Edges tells which stage feeds which, by their index in Stats.
func ExamplePipeline_Edges() {
	p := pipeline.New(context.Background())
	nums := pipeline.Generate(p, 1, 2, 3, 4)
	odd := pipeline.Filter(p, nums, func(n int) bool { return n%2 == 1 }, pipeline.Name("odd"))
	if err := pipeline.Drain(p, odd); err != nil {
		fmt.Println(err)
	}
	stats := p.Stats()
	for _, e := range p.Edges() {
		fmt.Printf("%s -> %s\n", stats[e.From-1].Name, stats[e.To-1].Name)
	}
	// Output:
	// generate#1 -> odd
}

func ExampleGenerate() {
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.Generate(p, "a", "b", "c"))
	fmt.Println(got, err)
	// Output: [a b c] <nil>
}

func ExampleFromSeq() {
	countdown := func(yield func(int) bool) {
		for i := 3; i > 0; i-- {
			if !yield(i) {
				return
			}
		}
	}
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.FromSeq(p, iter.Seq[int](countdown)))
	fmt.Println(got, err)
	// Output: [3 2 1] <nil>
}

func ExampleFromChan() {
	// A channel fed by code that knows nothing about the pipeline.
	lines := make(chan string)
	go func() {
		defer close(lines)
		for _, l := range []string{"alpha", "beta", "gamma"} {
			lines <- l
		}
	}()

	p := pipeline.New(context.Background())
	upper := pipeline.FanOutOrdered(p, pipeline.FromChan(p, lines, pipeline.Name("stdin")), 2,
		func(_ context.Context, s string) (string, error) { return strings.ToUpper(s), nil })
	got, err := pipeline.Collect(p, upper)
	fmt.Println(got, err)
	// Output: [ALPHA BETA GAMMA] <nil>
}

func ExampleProduce() {
	// A paginated API: fetch pages until there are none, emitting each record.
	pages := [][]string{{"ann", "bob"}, {"cid"}, {"dee", "eve"}}
	fetch := func(_ context.Context, page int) ([]string, bool) {
		if page >= len(pages) {
			return nil, false
		}
		return pages[page], true
	}

	p := pipeline.New(context.Background())
	users := pipeline.Produce(p, func(ctx context.Context, emit func(string) error) error {
		for page := 0; ; page++ {
			records, ok := fetch(ctx, page)
			if !ok {
				return nil
			}
			for _, r := range records {
				if err := emit(r); err != nil {
					return err
				}
			}
		}
	})
	got, err := pipeline.Collect(p, users)
	fmt.Println(got, err)
	// Output: [ann bob cid dee eve] <nil>
}

func ExampleFanOut() {
	p := pipeline.New(context.Background())
	urls := pipeline.Generate(p, "a.example", "b.example", "c.example")
	sizes := pipeline.FanOut(p, urls, 3, func(_ context.Context, url string) (string, error) {
		return fmt.Sprintf("%s: %d bytes", url, 100*len(url)), nil // a stand-in for a fetch
	})
	got, err := pipeline.Collect(p, sizes)
	slices.Sort(got) // results arrive in completion order
	fmt.Println(strings.Join(got, "\n"))
	fmt.Println(err)
	// Output:
	// a.example: 900 bytes
	// b.example: 900 bytes
	// c.example: 900 bytes
	// <nil>
}

func ExampleFanOutOrdered() {
	p := pipeline.New(context.Background())
	nums := pipeline.Generate(p, 5, 4, 3, 2, 1)
	slowFirst := pipeline.FanOutOrdered(p, nums, 5, func(_ context.Context, n int) (int, error) {
		time.Sleep(time.Duration(n) * time.Millisecond) // the first items finish last
		return n * 10, nil
	})
	got, err := pipeline.Collect(p, slowFirst)
	fmt.Println(got, err) // still in input order
	// Output: [50 40 30 20 10] <nil>
}

func ExampleFlatMap() {
	p := pipeline.New(context.Background())
	sentences := pipeline.Generate(p, "to be", "or not to be")
	words := pipeline.FlatMap(p, sentences, 1, func(_ context.Context, s string, emit func(string) error) error {
		for _, w := range strings.Fields(s) {
			if err := emit(w); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := pipeline.Collect(p, words)
	fmt.Println(got, err)
	// Output: [to be or not to be] <nil>
}

func ExampleFilter() {
	p := pipeline.New(context.Background())
	words := pipeline.Generate(p, "apple", "", "pear", "")
	nonEmpty := pipeline.Filter(p, words, func(s string) bool { return s != "" })
	got, err := pipeline.Collect(p, nonEmpty)
	fmt.Println(got, err)
	// Output: [apple pear] <nil>
}

func ExampleMerge() {
	p := pipeline.New(context.Background())
	east := pipeline.Generate(p, "e1", "e2")
	west := pipeline.Generate(p, "w1", "w2")
	got, err := pipeline.Collect(p, pipeline.Merge(p, east, west))
	slices.Sort(got) // no order across inputs
	fmt.Println(got, err)
	// Output: [e1 e2 w1 w2] <nil>
}

func ExampleTee() {
	p := pipeline.New(context.Background())
	copies := pipeline.Tee(p, pipeline.Generate(p, 1, 2, 3), 2)
	doubled := pipeline.FanOut(p, copies[0], 1, func(_ context.Context, n int) (string, error) {
		return fmt.Sprintf("%d doubled is %d", n, 2*n), nil
	})
	squared := pipeline.FanOut(p, copies[1], 1, func(_ context.Context, n int) (string, error) {
		return fmt.Sprintf("%d squared is %d", n, n*n), nil
	})
	got, err := pipeline.Collect(p, pipeline.Merge(p, doubled, squared))
	slices.Sort(got)
	fmt.Println(strings.Join(got, "\n"))
	fmt.Println(err)
	// Output:
	// 1 doubled is 2
	// 1 squared is 1
	// 2 doubled is 4
	// 2 squared is 4
	// 3 doubled is 6
	// 3 squared is 9
	// <nil>
}

func ExamplePartition() {
	p := pipeline.New(context.Background())
	byParity := pipeline.Partition(p, pipeline.Generate(p, 1, 2, 3, 4, 5), 2,
		func(n int) int { return n % 2 })
	label := func(name string) func(context.Context, int) (string, error) {
		return func(_ context.Context, n int) (string, error) { return fmt.Sprintf("%s %d", name, n), nil }
	}
	evens := pipeline.FanOut(p, byParity[0], 1, label("even"))
	odds := pipeline.FanOut(p, byParity[1], 1, label("odd"))
	got, err := pipeline.Collect(p, pipeline.Merge(p, evens, odds))
	slices.Sort(got)
	fmt.Println(got, err)
	// Output: [even 2 even 4 odd 1 odd 3 odd 5] <nil>
}

func ExampleCollect() {
	p := pipeline.New(context.Background())
	got, err := pipeline.Collect(p, pipeline.Generate(p, 3, 1, 2))
	fmt.Println(got, err) // in arrival order
	// Output: [3 1 2] <nil>
}

func ExampleForEach() {
	var mu sync.Mutex
	saved := map[string]int{}

	p := pipeline.New(context.Background())
	err := pipeline.ForEach(p, pipeline.Generate(p, "a", "bb", "ccc"), 2, func(_ context.Context, s string) error {
		mu.Lock()
		defer mu.Unlock()
		saved[s] = len(s) // a stand-in for a write to a store
		return nil
	})
	fmt.Println(len(saved), saved["ccc"], err)
	// Output: 3 3 <nil>
}

func ExampleReduce() {
	p := pipeline.New(context.Background())
	sq := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3, 4), 2, func(_ context.Context, n int) (int, error) {
		return n * n, nil
	})
	sum, err := pipeline.Reduce(p, sq, 0, func(acc, n int) int { return acc + n })
	fmt.Println(sum, err)
	// Output: 30 <nil>
}

func ExampleFirst() {
	p := pipeline.New(context.Background())
	naturals := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for n := 1; ; n++ { // endless: First stops it
			if err := emit(n); err != nil {
				return err
			}
		}
	})
	squares := pipeline.FanOutOrdered(p, naturals, 4, func(_ context.Context, n int) (int, error) {
		return n * n, nil
	})
	big := pipeline.Filter(p, squares, func(n int) bool { return n > 50 })
	v, ok, err := pipeline.First(p, big)
	fmt.Println(v, ok, err)
	// Output: 64 true <nil>
}

func ExampleDrain() {
	var sent atomic.Int64
	p := pipeline.New(context.Background())
	notified := pipeline.FanOut(p, pipeline.Generate(p, "ann", "bob", "cid"), 2,
		func(_ context.Context, user string) (string, error) {
			sent.Add(1) // a stand-in for sending a notification
			return user, nil
		})
	err := pipeline.Drain(p, notified)
	fmt.Println(sent.Load(), err)
	// Output: 3 <nil>
}

func ExampleAll() {
	p := pipeline.New(context.Background())
	nums := pipeline.Generate(p, 10, 20, 30, 40, 50)
	for n := range pipeline.All(p, nums) {
		fmt.Println(n)
		if n == 30 {
			break // an early exit, not a failure
		}
	}
	fmt.Println(p.Wait())
	// Output:
	// 10
	// 20
	// 30
	// <nil>
}

func ExampleName() {
	p := pipeline.New(context.Background())
	parsed := pipeline.FanOut(p, pipeline.Generate(p, "7", "seven"), 1,
		func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) },
		pipeline.Name("parse"))
	_, err := pipeline.Collect(p, parsed)
	fmt.Println(err)
	fmt.Println(p.Stats()[1].Name)
	// Output:
	// pipeline: stage parse: strconv.Atoi: parsing "seven": invalid syntax
	// parse
}

func ExampleBufferSize() {
	p := pipeline.New(context.Background())
	nums := pipeline.Generate(p, 1, 2, 3)
	// This stage's output holds one item: it runs at most one result ahead.
	doubled := pipeline.FanOut(p, nums, 1, func(_ context.Context, n int) (int, error) {
		return 2 * n, nil
	}, pipeline.BufferSize(1))
	fmt.Println("capacity:", cap(doubled))
	got, err := pipeline.Collect(p, doubled)
	fmt.Println(got, err)
	// Output:
	// capacity: 1
	// [2 4 6] <nil>
}

func ExampleOnError() {
	p := pipeline.New(context.Background())
	parsed := pipeline.FanOut(p, pipeline.Generate(p, "1", "two", "3", "four"), 1,
		func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) },
		pipeline.OnError(func(err *pipeline.StageError) error {
			fmt.Printf("skipping %q\n", err.Item)
			return nil // nil skips the item; an error would fail the pipeline
		}))
	got, err := pipeline.Collect(p, parsed)
	fmt.Println(got, err)
	fmt.Println("errors:", p.Stats()[1].Errors)
	// Output:
	// skipping "two"
	// skipping "four"
	// [1 3] <nil>
	// errors: 2
}

func ExampleStageError() {
	p := pipeline.New(context.Background())
	parsed := pipeline.FanOut(p, pipeline.Generate(p, "1", "x"), 1,
		func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) })
	_, err := pipeline.Collect(p, parsed)

	var se *pipeline.StageError
	if errors.As(err, &se) {
		fmt.Println("stage:", se.Stage)
		fmt.Printf("item: %q\n", se.Item)
		fmt.Println("syntax error:", errors.Is(err, strconv.ErrSyntax))
	}
	// Output:
	// stage: fanout#2
	// item: "x"
	// syntax error: true
}

func ExamplePanicError() {
	p := pipeline.New(context.Background())
	out := pipeline.FanOut(p, pipeline.Generate(p, []int{1, 2}, nil), 1,
		func(_ context.Context, s []int) (int, error) { return s[1], nil }) // panics on nil
	_, err := pipeline.Collect(p, out)

	var pe *pipeline.PanicError
	if errors.As(err, &pe) {
		fmt.Println("recovered:", pe.Value)
		fmt.Println("with stack:", len(pe.Stack) > 0)
	}
	// Output:
	// recovered: runtime error: index out of range [1] with length 0
	// with stack: true
}

func ExampleStageError_Error() {
	err := &pipeline.StageError{Stage: "parse", Item: "x", Err: strconv.ErrSyntax}
	fmt.Println(err.Error())
	// Output: pipeline: stage parse: invalid syntax
}

func ExampleStageError_Unwrap() {
	err := &pipeline.StageError{Stage: "parse", Item: "x", Err: strconv.ErrSyntax}
	fmt.Println(err.Unwrap() == strconv.ErrSyntax, errors.Is(err, strconv.ErrSyntax))
	// Output: true true
}

func ExamplePanicError_Error() {
	err := &pipeline.PanicError{Value: "boom"}
	fmt.Println(err.Error())
	// Output: panic: boom
}

func ExamplePanicError_Unwrap() {
	// A panic with an error value unwraps to it, so errors.Is reaches it.
	err := &pipeline.StageError{Stage: "read", Err: &pipeline.PanicError{Value: io.ErrUnexpectedEOF}}
	fmt.Println(errors.Is(err, io.ErrUnexpectedEOF))
	// Output: true
}

// A Shutdown that runs out of time says what still runs, and why.
func ExampleShutdownError() {
	p := pipeline.New(context.Background())
	started := make(chan struct{})
	out := pipeline.FanOut(p, pipeline.Generate(p, 1), 1, func(ctx context.Context, v int) (int, error) {
		close(started)
		<-ctx.Done() // a call that only ends when the pipeline is cancelled
		return v, ctx.Err()
	}, pipeline.Name("slow"))
	go func() { _ = pipeline.Drain(p, out) }()
	<-started

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := p.Shutdown(ctx)
	var se *pipeline.ShutdownError
	fmt.Println(errors.As(err, &se), errors.Is(err, context.DeadlineExceeded))
	fmt.Println(se.Running)
	// Output:
	// true true
	// [slow: in a user call (1 of 1 workers)]
}

func ExampleShutdownError_Error() {
	err := &pipeline.ShutdownError{Err: context.DeadlineExceeded, Running: []string{"insert: in a user call (1 of 1 workers)"}}
	fmt.Println(err.Error())
	// Output: pipeline: shutdown: context deadline exceeded; still running: insert: in a user call (1 of 1 workers)
}

func ExampleShutdownError_Unwrap() {
	err := &pipeline.ShutdownError{Err: context.DeadlineExceeded}
	fmt.Println(err.Unwrap() == context.DeadlineExceeded)
	// Output: true
}

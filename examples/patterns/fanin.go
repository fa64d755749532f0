package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/ec0f1147/pipeline"
)

// fanInHand squares nums with two workers reading one channel (fan-out)
// and merges their outputs into one channel (fan-in), stage by stage.
func fanInHand(ctx context.Context, nums []int) []int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // whatever happens below, every stage can give up
	in := handGen(ctx, nums)
	c1, c2 := handSquare(ctx, in), handSquare(ctx, in)
	var out []int
	for n := range handMerge(ctx, c1, c2) {
		out = append(out, n)
	}
	return out
}

// handGen sends nums on a new channel and closes it.
func handGen(ctx context.Context, nums []int) <-chan int {
	out := make(chan int)
	go func() {
		defer close(out)
		for _, n := range nums {
			select {
			case out <- n:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// handSquare squares what it reads from in.
func handSquare(ctx context.Context, in <-chan int) <-chan int {
	out := make(chan int)
	go func() {
		defer close(out)
		for n := range in {
			select {
			case out <- n * n:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// handMerge copies every input to one output and closes it when all the
// inputs are done: close it earlier and a copier panics sending on a closed
// channel; never close it and the reader's range never ends.
func handMerge(ctx context.Context, ins ...<-chan int) <-chan int {
	out := make(chan int)
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range in {
				select {
				case out <- n:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// fanInPipe is the same shape: two stages read one channel, Merge joins
// them. (FanOut(p, nums, 2, square) does both in one stage.)
func fanInPipe(ctx context.Context, nums []int) ([]int, error) {
	p := newPipeline(ctx)
	in := pipeline.Generate(p, nums...)
	square := func(_ context.Context, n int) (int, error) { return n * n, nil }
	c1, c2 := pipeline.FanOut(p, in, 1, square), pipeline.FanOut(p, in, 1, square)
	return pipeline.Collect(p, pipeline.Merge(p, c1, c2))
}

var fanInNums = []int{1, 2, 3, 4, 5, 6, 7, 8}

func fanInDemoHand(w io.Writer) error {
	out := fanInHand(context.Background(), fanInNums)
	slices.Sort(out)
	fmt.Fprintf(w, "squares, merged from two workers: %v\n", out)
	return nil
}

func fanInDemoPipe(w io.Writer) error {
	out, err := fanInPipe(context.Background(), fanInNums)
	slices.Sort(out)
	fmt.Fprintf(w, "squares, merged from two workers: %v\n", out)
	return err
}

package bench

import (
	"context"
	"sync"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/ec0f1147/pipeline"
	"github.com/panjf2000/ants/v2"
	"github.com/sourcegraph/conc/pool"
	"github.com/sourcegraph/conc/stream"
	"golang.org/x/sync/errgroup"
)

// work is what a workload does to each item: fn maps it, and keep, when not
// nil, filters the results (W1 and W2: x*3 then even; W3: sleep; W4: hash).
type work struct {
	fn   func(int) int
	keep func(int) bool
}

// A contender runs one workload over in with the given number of workers and
// returns the kept results: in input order for the ordered contenders, in any
// order for the others. Every contender takes the same input slice, so the
// source costs the same everywhere, and builds everything it needs (channels,
// goroutines, pools) inside the call, as a user would per job.
type contender struct {
	impl string
	run  func(ctx context.Context, in []int, workers int, w work) ([]int, error)
}

// unordered are the contenders for W1, W2 unordered, W3 and W4. The first one
// is the baseline benchstat compares the others with.
var unordered = []contender{
	{"handctx", handCtx},
	{"handnoctx", handNoCtx},
	{"errgroup", errgroupLimit},
	{"conc", concPool},
	{"pond", pondPool},
	{"ants", antsPool},
	{"pipeline", pipelineFanOut},
}

// ordered are the contenders for W2 ordered: results in input order.
var ordered = []contender{
	{"handctx", handCtxOrdered},
	{"handnoctx", handNoCtxOrdered},
	{"conc", concStream},
	{"pond", pondGroup},
	{"pipeline", pipelineFanOutOrdered},
}

// floor is the W3 and W4 reference: no channel and no pool, each of workers
// goroutines takes a fixed share of the items (i, i+workers, i+2·workers…)
// and writes its results in place. No distribution can do better.
var floor = contender{"floor", staticSplit}

// handCtx is the classic hand-written pipeline: one goroutine per stage,
// unbuffered channels, every send in a select with ctx.Done(), workers
// sharing one output closed by a WaitGroup.
func handCtx(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	src := make(chan int)
	go func() {
		defer close(src)
		for _, x := range in {
			select {
			case src <- x:
			case <-ctx.Done():
				return
			}
		}
	}()

	mapped := make(chan int)
	var wg sync.WaitGroup
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			for x := range src {
				select {
				case mapped <- w.fn(x):
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(mapped)
	}()

	return handFilterCollect(ctx, mapped, w)
}

// handNoCtx is handCtx without a context: plain sends, no way to stop it
// early. It is the floor for what channels alone cost.
func handNoCtx(_ context.Context, in []int, workers int, w work) ([]int, error) {
	src := make(chan int)
	go func() {
		defer close(src)
		for _, x := range in {
			src <- x
		}
	}()

	mapped := make(chan int)
	var wg sync.WaitGroup
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			for x := range src {
				mapped <- w.fn(x)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(mapped)
	}()

	last := (<-chan int)(mapped)
	if w.keep != nil {
		kept := make(chan int)
		go func() {
			defer close(kept)
			for x := range mapped {
				if w.keep(x) {
					kept <- x
				}
			}
		}()
		last = kept
	}

	var out []int
	for x := range last {
		out = append(out, x)
	}
	return out, nil
}

// seqItem is an item of the hand-written ordered pipeline with its position
// in the input.
type seqItem struct {
	seq, val int
}

// handCtxOrdered is the ordered pipeline as people write it: the source
// numbers the items, the workers pass the number on with the result, and a
// reorder stage parks early results in a map until the next expected one
// arrives. Every send is in a select with ctx.Done().
func handCtxOrdered(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	src := make(chan seqItem)
	go func() {
		defer close(src)
		for i, x := range in {
			select {
			case src <- seqItem{i, x}:
			case <-ctx.Done():
				return
			}
		}
	}()

	results := make(chan seqItem)
	var wg sync.WaitGroup
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			for it := range src {
				select {
				case results <- seqItem{it.seq, w.fn(it.val)}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	inOrder := make(chan int)
	go func() {
		defer close(inOrder)
		pending := make(map[int]int)
		next := 0
		for r := range results {
			pending[r.seq] = r.val
			for {
				v, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				select {
				case inOrder <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()

	return handFilterCollect(ctx, inOrder, w)
}

// handNoCtxOrdered is handCtxOrdered without a context.
func handNoCtxOrdered(_ context.Context, in []int, workers int, w work) ([]int, error) {
	src := make(chan seqItem)
	go func() {
		defer close(src)
		for i, x := range in {
			src <- seqItem{i, x}
		}
	}()

	results := make(chan seqItem)
	var wg sync.WaitGroup
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			for it := range src {
				results <- seqItem{it.seq, w.fn(it.val)}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	inOrder := make(chan int)
	go func() {
		defer close(inOrder)
		pending := make(map[int]int)
		next := 0
		for r := range results {
			pending[r.seq] = r.val
			for {
				v, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				inOrder <- v
			}
		}
	}()

	last := (<-chan int)(inOrder)
	if w.keep != nil {
		kept := make(chan int)
		go func() {
			defer close(kept)
			for x := range inOrder {
				if w.keep(x) {
					kept <- x
				}
			}
		}()
		last = kept
	}

	var out []int
	for x := range last {
		out = append(out, x)
	}
	return out, nil
}

// keepInto returns the task body the worker-pool contenders share: map one
// item, filter it, and append the result to out under mu.
func keepInto(w work, mu *sync.Mutex, out *[]int) func(int) {
	return func(x int) {
		v := w.fn(x)
		if w.keep != nil && !w.keep(v) {
			return
		}
		mu.Lock()
		*out = append(*out, v)
		mu.Unlock()
	}
}

// errgroupLimit submits one task per item to an errgroup with SetLimit:
// Go blocks while workers tasks run, and each task is a new goroutine.
func errgroupLimit(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var mu sync.Mutex
	var out []int
	do := keepInto(w, &mu, &out)
	for _, x := range in {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			do(x)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return out, err
	}
	return out, context.Cause(ctx)
}

// concPool submits one task per item to a sourcegraph/conc pool capped at
// workers goroutines (the pool reuses its goroutines).
func concPool(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	p := pool.New().WithMaxGoroutines(workers)
	var mu sync.Mutex
	var out []int
	do := keepInto(w, &mu, &out)
	for _, x := range in {
		if ctx.Err() != nil {
			break
		}
		p.Go(func() { do(x) })
	}
	p.Wait()
	return out, context.Cause(ctx)
}

// concStream is the ordered sourcegraph/conc contender: each task returns a
// callback, and the stream runs the callbacks one at a time in submission
// order.
func concStream(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	s := stream.New().WithMaxGoroutines(workers)
	var out []int
	for _, x := range in {
		if ctx.Err() != nil {
			break
		}
		s.Go(func() stream.Callback {
			v := w.fn(x)
			return func() {
				if w.keep == nil || w.keep(v) {
					out = append(out, v)
				}
			}
		})
	}
	s.Wait()
	return out, context.Cause(ctx)
}

// pondPool submits one task per item to an alitto/pond pool of workers
// goroutines with its default (unbounded) queue, using Go, the submission
// that returns no future.
func pondPool(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	p := pond.NewPool(workers, pond.WithContext(ctx))
	var mu sync.Mutex
	var out []int
	do := keepInto(w, &mu, &out)
	for _, x := range in {
		if err := p.Go(func() { do(x) }); err != nil {
			break
		}
	}
	p.StopAndWait()
	return out, context.Cause(ctx)
}

// pondGroup is the ordered pond contender: a result group returns every
// result in submission order once all tasks are done, so it holds every
// result at once rather than streaming them; the filter runs on the result.
func pondGroup(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	p := pond.NewResultPool[int](workers, pond.WithContext(ctx))
	defer p.StopAndWait()
	g := p.NewGroupContext(ctx)
	for _, x := range in {
		g.Submit(func() int { return w.fn(x) })
	}
	res, err := g.Wait()
	if err != nil {
		return nil, err
	}
	if w.keep == nil {
		return res, nil
	}
	var out []int
	for _, v := range res {
		if w.keep(v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// antsRelease bounds the wait for an ants pool's goroutines to exit.
const antsRelease = 5 * time.Second

// antsPool hands the items to a panjf2000/ants pool of workers goroutines
// bound to one function (PoolWithFuncGeneric, its allocation-free path);
// Invoke blocks while every worker is busy.
func antsPool(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	var mu sync.Mutex
	var out []int
	var wg sync.WaitGroup
	do := keepInto(w, &mu, &out)
	p, err := ants.NewPoolWithFuncGeneric(workers, func(x int) {
		defer wg.Done()
		do(x)
	})
	if err != nil {
		return nil, err
	}
	for _, x := range in {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		if err := p.Invoke(x); err != nil {
			wg.Done()
			wg.Wait()
			_ = p.ReleaseTimeout(antsRelease)
			return out, err
		}
	}
	wg.Wait()
	if err := p.ReleaseTimeout(antsRelease); err != nil {
		return out, err
	}
	return out, context.Cause(ctx)
}

// pipelineFanOut is the library: Generate → FanOut(workers) → Filter →
// Collect.
func pipelineFanOut(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	p := pipeline.New(ctx)
	mapped := pipeline.FanOut(p, pipeline.Generate(p, in...), workers,
		func(_ context.Context, x int) (int, error) { return w.fn(x), nil })
	if w.keep != nil {
		mapped = pipeline.Filter(p, mapped, w.keep)
	}
	return pipeline.Collect(p, mapped)
}

// pipelineFanOutOrdered is pipelineFanOut with FanOutOrdered.
func pipelineFanOutOrdered(ctx context.Context, in []int, workers int, w work) ([]int, error) {
	p := pipeline.New(ctx)
	mapped := pipeline.FanOutOrdered(p, pipeline.Generate(p, in...), workers,
		func(_ context.Context, x int) (int, error) { return w.fn(x), nil })
	if w.keep != nil {
		mapped = pipeline.Filter(p, mapped, w.keep)
	}
	return pipeline.Collect(p, mapped)
}

// staticSplit is the floor: see floor.
func staticSplit(_ context.Context, in []int, workers int, w work) ([]int, error) {
	res := make([]int, len(in))
	var wg sync.WaitGroup
	wg.Add(workers)
	for g := range workers {
		go func() {
			defer wg.Done()
			for i := g; i < len(in); i += workers {
				res[i] = w.fn(in[i])
			}
		}()
	}
	wg.Wait()
	if w.keep == nil {
		return res, nil
	}
	out := res[:0]
	for _, v := range res {
		if w.keep(v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// handFilterCollect is the tail of the hand-written ctx pipelines: a filter
// stage (if w has one) whose every send is in a select with ctx.Done(), then
// the collecting loop.
func handFilterCollect(ctx context.Context, in <-chan int, w work) ([]int, error) {
	last := in
	if w.keep != nil {
		kept := make(chan int)
		go func() {
			defer close(kept)
			for x := range in {
				if !w.keep(x) {
					continue
				}
				select {
				case kept <- x:
				case <-ctx.Done():
					return
				}
			}
		}()
		last = kept
	}

	var out []int
	for x := range last {
		out = append(out, x)
	}
	return out, context.Cause(ctx)
}

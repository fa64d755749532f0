package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/live"
)

// watching is what -http and -slow set up: the live view every pattern's
// pipeline is added to, named after the pattern, and the time each call of
// a stage's function is slowed by, so that a person can watch backpressure
// build up, items being dropped, a throttle pacing. Without either flag
// newPipeline is pipeline.New.
var watching struct {
	mu      sync.Mutex
	h       *live.Handler  // nil: no live view
	pace    time.Duration  // 0: full speed
	pattern string         // the pattern running now
	made    map[string]int // pipelines made per pattern, to name the second one "#2"
}

// newPipeline is pipeline.New, plus the live view of -http and the slow
// calls of -slow (see watching).
func newPipeline(ctx context.Context, opts ...pipeline.Option) *pipeline.Pipeline {
	watching.mu.Lock()
	defer watching.mu.Unlock()
	if watching.pace > 0 {
		opts = append(opts, pipeline.WithObserver(pacer(watching.pace)))
	}
	p := pipeline.New(ctx, opts...)
	if watching.h != nil {
		name := watching.pattern
		if name == "" {
			name = "pipeline"
		}
		if watching.made == nil {
			watching.made = map[string]int{}
		}
		watching.made[name]++
		if n := watching.made[name]; n > 1 {
			name = fmt.Sprintf("%s #%d", name, n)
		}
		_ = watching.h.Add(name, p) // names are unique by construction
	}
	return p
}

// watchAll sets the live view the pipelines are added to (nil: none) and
// the pace of -slow (0: full speed).
func watchAll(h *live.Handler, pace time.Duration) {
	watching.mu.Lock()
	watching.h, watching.pace, watching.pattern, watching.made = h, pace, "", nil
	watching.mu.Unlock()
}

// watchPattern names the pipelines made from now on after pattern.
func watchPattern(pattern string) {
	watching.mu.Lock()
	watching.pattern = pattern
	watching.mu.Unlock()
}

// pacer slows every call of a stage's function (FanOut, FlatMap,
// FanOutOrdered, ForEach) by its duration. It is a CallObserver that
// sleeps: the observer contract asks for a quick Call, and breaking it on
// purpose is exactly what a slow mode for teaching wants (the worker is
// held as if its function were slower). Never do this in a real program.
type pacer time.Duration

func (pacer) StageStarted(pipeline.StageInfo)                    {}
func (pacer) StageEnded(pipeline.StageInfo, pipeline.StageStats) {}
func (pacer) PipelineEnded(error, []pipeline.StageStats)         {}
func (pacer) CallEvery() int                                     { return 1 }
func (d pacer) Call(pipeline.CallInfo)                           { time.Sleep(time.Duration(d)) }

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"

	"github.com/ec0f1147/pipeline"
)

// contender is one way of limiting the stage's calls.
type contender struct {
	name     string
	adaptive bool
	make     func(cfg config) setup
}

// setup is a contender made for one run.
type setup struct {
	opts  []pipeline.StageOption                                            // of the stage
	wrap  func(ctx context.Context, call func(context.Context) error) error // around each call of the downstream
	limit func() int                                                        // the limit now
	ours  *pipeline.Limiter                                                 // the library's limiter, if it is one
}

func direct(ctx context.Context, call func(context.Context) error) error { return call(ctx) }

func contenders(cfg config) []contender {
	var cs []contender
	for _, n := range cfg.fixed {
		cs = append(cs, contender{name: fmt.Sprintf("fixed %d", n), make: func(config) setup {
			l := pipeline.NewLimiter(n)
			return setup{[]pipeline.StageOption{pipeline.Limit(l)}, direct, l.Limit, nil}
		}})
	}
	ours := func(name string, alg pipeline.Algorithm) contender {
		return contender{name: name, adaptive: true, make: func(cfg config) setup {
			l := pipeline.NewAdaptiveLimiter(1, cfg.workers, alg)
			l.SetLimit(cfg.initial)
			return setup{[]pipeline.StageOption{pipeline.Limit(l)}, direct, l.Limit, l}
		}}
	}
	cs = append(cs,
		ours("pipeline AIMD", pipeline.AIMD{Threshold: time.Duration(cfg.aimd * float64(cfg.base))}),
		ours("pipeline Vegas", pipeline.Vegas{}),
	)
	failsafe := func(name string, b adaptivelimiter.Builder[any], dropErrors bool) contender {
		return contender{name: name, adaptive: true, make: func(cfg config) setup {
			lim := b.WithLimits(1, uint(cfg.workers), uint(cfg.initial)).Build()
			wrap := func(ctx context.Context, call func(context.Context) error) error {
				permit, err := lim.AcquirePermit(ctx)
				if err != nil {
					return err
				}
				err = call(ctx)
				if err != nil && dropErrors {
					permit.Drop()
				} else {
					permit.Record()
				}
				return err
			}
			return setup{nil, wrap, lim.Limit, nil}
		}}
	}
	cs = append(cs,
		// As its own executor does: every call recorded, error or not.
		failsafe("failsafe-go defaults", adaptivelimiter.NewBuilder[any](), false),
		// Tuned: a recent window of 10 calls over 10 to 100 base latencies
		// (the default is 50 calls over 1 s to 30 s), and errors dropped,
		// not recorded, so that failures do not read as good latency.
		// failsafe-go's limiter reads latency only, so this decides what an
		// error looks like to it. (Tried too, in one run: a p50 window of 20 calls over 4 to
		// 40 base latencies, a max limit factor of 1.5, a baseline window
		// of 3; none did better in the C = 4 phase, where its limit stays
		// put: nearly every call fails, and failures teach it nothing.)
		failsafe("failsafe-go tuned", adaptivelimiter.NewBuilder[any]().
			WithRecentWindow(cfg.base*10, cfg.base*100, 10), true),
	)
	return cs
}

// run runs the contender's stage against d until drive, which is handed how
// to read the limit and how to stop the pipeline, returns.
func (c contender) run(ctx context.Context, cfg config, d *downstream, drive func(s setup, stop func()) limitTrace) (limitTrace, error) {
	st := c.make(cfg)
	opts, wrap := st.opts, st.wrap
	p := pipeline.New(ctx)
	src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
		for i := 0; ; i++ {
			if err := emit(i); err != nil {
				return err
			}
		}
	})
	call := func(ctx context.Context, _ int) (struct{}, error) { return struct{}{}, wrap(ctx, d.call) }
	skip := pipeline.OnError(func(*pipeline.StageError) error { return nil })
	out := pipeline.FanOut(p, src, cfg.workers, call, append(opts, skip)...)
	trace := make(chan limitTrace, 1)
	go func() { trace <- drive(st, p.Stop) }()
	err := pipeline.Drain(p, out)
	return <-trace, err
}

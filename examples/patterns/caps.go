package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
)

// task is a job of one kind.
type task struct {
	Kind string
	ID   int
}

var taskKinds = []string{"resize", "upload"}

// capsHand runs every task in one pool of poolSize slots, with at most
// kindCap tasks of any one kind at once.
func capsHand(tasks []task, poolSize, kindCap int, run func(task)) {
	pool := make(chan struct{}, poolSize)
	byKind := map[string][]task{}
	for _, t := range tasks {
		byKind[t.Kind] = append(byKind[t.Kind], t)
	}
	var wg sync.WaitGroup
	for _, ts := range byKind {
		kind := make(chan struct{}, kindCap)
		wg.Add(1)
		go func() { // a dispatcher per kind: a full kind never holds up another
			defer wg.Done()
			for _, t := range ts {
				kind <- struct{}{} // the kind's slot first, then the pool's:
				pool <- struct{}{} // the other order holds a pool slot idle while the kind is full
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-pool; <-kind }()
					run(t)
				}()
			}
		}()
	}
	wg.Wait()
}

// capsPipe is the same: Partition splits the tasks by kind, each kind's
// stage runs kindCap workers, and Limit makes every call also hold a slot
// of the shared pool.
func capsPipe(tasks []task, poolSize, kindCap int, run func(task)) error {
	pool := pipeline.NewLimiter(poolSize)
	p := newPipeline(context.Background())
	byKind := pipeline.Partition(p, pipeline.Generate(p, tasks...), len(taskKinds),
		func(t task) int { return slices.Index(taskKinds, t.Kind) })
	var done []<-chan struct{}
	for i, in := range byKind {
		done = append(done, pipeline.FanOut(p, in, kindCap,
			func(_ context.Context, t task) (struct{}, error) { run(t); return struct{}{}, nil },
			pipeline.Name(taskKinds[i]), pipeline.Limit(pool)))
	}
	return pipeline.Drain(p, pipeline.Merge(p, done...))
}

// capsMeter records how many tasks run at once, in all and per kind.
type capsMeter struct {
	all    gauge
	byKind map[string]*gauge
	mu     sync.Mutex
	ran    map[string]int
}

func newCapsMeter() *capsMeter {
	m := &capsMeter{byKind: map[string]*gauge{}, ran: map[string]int{}}
	for _, k := range taskKinds {
		m.byKind[k] = &gauge{}
	}
	return m
}

func (m *capsMeter) run(t task) {
	defer m.all.add(1)()
	defer m.byKind[t.Kind].add(1)()
	time.Sleep(2 * time.Millisecond)
	m.mu.Lock()
	m.ran[t.Kind]++
	m.mu.Unlock()
}

const (
	capsPool = 4
	capsCap  = 3
)

func capsDemo(w io.Writer, run func([]task, int, int, func(task)) error) error {
	var tasks []task
	for i := range 12 {
		tasks = append(tasks, task{"resize", i}, task{"upload", i})
	}
	m := newCapsMeter()
	err := run(tasks, capsPool, capsCap, m.run)
	for _, k := range taskKinds {
		fmt.Fprintf(w, "%s: ran %d, %s", k, m.ran[k], limitLine(m.byKind[k].Max(), capsCap))
	}
	fmt.Fprintf(w, "both kinds together: %s", limitLine(m.all.Max(), capsPool))
	return err
}

func capsDemoHand(w io.Writer) error {
	return capsDemo(w, func(tasks []task, pool, cap int, run func(task)) error {
		capsHand(tasks, pool, cap, run)
		return nil
	})
}

func capsDemoPipe(w io.Writer) error { return capsDemo(w, capsPipe) }

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/ec0f1147/pipeline"
)

// sensor is a resource a worker holds open: it must be closed.
type sensor struct {
	id, reads int
	fleet     *fleet
}

// Read returns the next reading; sensor 0's fifth reading is bad (-1).
func (s *sensor) Read() int {
	s.reads++
	if s.id == 0 && s.reads == 5 {
		return -1
	}
	return s.reads
}

func (s *sensor) Close() { s.fleet.closed.Add(1) }

// fleet opens sensors and counts how many are open.
type fleet struct{ opened, closed atomic.Int32 }

func (f *fleet) open(id int) *sensor {
	f.opened.Add(1)
	return &sensor{id: id, fleet: f}
}

var errBadReading = errors.New("bad reading")

// killHand starts a worker per sensor that sends readings until killed,
// reads them until a bad one, and returns an error for it. However it
// returns, the kill channel stops every worker and each closes its sensor.
func killHand(workers int, open func(id int) *sensor) error {
	kill := make(chan struct{})
	readings := make(chan int)
	done := make(chan struct{}, workers)
	// Deferred, so that every return path runs it: close (not send on) the
	// kill channel, which tells every worker at once, then wait for them
	// all to have closed their sensors. Forget it on one early return and
	// the workers block on their next send forever, sensors open.
	defer func() {
		close(kill)
		for range workers {
			<-done
		}
	}()
	for id := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			s := open(id)
			defer s.Close()
			for {
				select {
				case readings <- s.Read():
				case <-kill:
					return
				}
			}
		}()
	}
	for r := range readings {
		if r < 0 {
			return fmt.Errorf("%w: %d", errBadReading, r)
		}
	}
	return nil
}

// killPipe is the same: a source per sensor, merged. The error from the
// sink cancels the pipeline, every source's emit fails and it returns,
// closing its sensor, and ForEach returns only after all of them have.
func killPipe(workers int, open func(id int) *sensor) error {
	p := newPipeline(context.Background())
	var sources []<-chan int
	for id := range workers {
		sources = append(sources, pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
			s := open(id)
			defer s.Close()
			for {
				if err := emit(s.Read()); err != nil {
					return err
				}
			}
		}))
	}
	return pipeline.ForEach(p, pipeline.Merge(p, sources...), 1, func(_ context.Context, r int) error {
		if r < 0 {
			return fmt.Errorf("%w: %d", errBadReading, r)
		}
		return nil
	})
}

func killDemo(w io.Writer, run func(int, func(int) *sensor) error) error {
	var f fleet
	err := run(3, f.open)
	if !errors.Is(err, errBadReading) {
		return fmt.Errorf("want a bad reading, got %v", err)
	}
	fmt.Fprintf(w, "stopped on a bad reading\nsensors opened %d, closed %d\n", f.opened.Load(), f.closed.Load())
	return nil
}

func killDemoHand(w io.Writer) error { return killDemo(w, killHand) }
func killDemoPipe(w io.Writer) error { return killDemo(w, killPipe) }

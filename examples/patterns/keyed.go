package main

import (
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ec0f1147/pipeline"
)

// deposit is an event of one account: the events of an account must be
// applied one at a time, in order; different accounts may run in parallel.
type deposit struct {
	Account string
	Seq     int // the event's place among its account's events
}

// keyedHand applies every event with workers goroutines, one event at a
// time per account and in each account's order, accounts in parallel. A
// dispatcher owns the queues: it hands a free worker the next event of an
// account with nothing in flight, and queues the others behind their
// account until the worker reports it done.
func keyedHand(events []deposit, workers int, apply func(deposit) string) []string {
	work := make(chan deposit)
	done := make(chan string) // the account of each event applied
	results := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range work {
				results <- apply(e)
				done <- e.Account // only now may the account's next event start
			}
		}()
	}
	// The shorter way, a channel per worker and each account always sent to
	// worker hash(account) % workers, keeps the order too: but a slow account
	// then stalls every account of its worker, and once that channel is full,
	// this loop and so every account.
	go func() {
		defer close(work)
		waiting := map[string][]deposit{} // the accounts in flight, and what queues behind them
		var ready []deposit               // events whose account is free, in the order they became so
		next, inFlight := 0, 0
		for next < len(events) || len(ready) > 0 || inFlight > 0 {
			for next < len(events) && len(ready) == 0 {
				e := events[next]
				next++
				if q, busy := waiting[e.Account]; busy {
					waiting[e.Account] = append(q, e)
				} else {
					waiting[e.Account] = nil
					ready = append(ready, e)
				}
			}
			var to chan deposit // nil, so never chosen, while nothing is ready
			var head deposit
			if len(ready) > 0 {
				to, head = work, ready[0]
			}
			select {
			case to <- head:
				ready = ready[1:]
				inFlight++
			case acct := <-done:
				inFlight--
				if q := waiting[acct]; len(q) > 0 {
					ready = append(ready, q[0])
					waiting[acct] = q[1:]
				} else {
					delete(waiting, acct) // an idle account holds no memory
				}
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var out []string
	for r := range results {
		out = append(out, r)
	}
	return out
}

// keyedPipe is the same: FanOutKeyed runs one call at a time per key, a
// free worker takes the oldest event whose account is free, and at most
// MaxPending events (1024 by default) wait for their account.
func keyedPipe(events []deposit, workers int, apply func(deposit) string) ([]string, error) {
	p := newPipeline(context.Background())
	applied := pipeline.FanOutKeyed(p, pipeline.Generate(p, events...), workers,
		func(e deposit) string { return e.Account },
		func(_ context.Context, e deposit) (string, error) { return apply(e), nil })
	return pipeline.Collect(p, applied)
}

// shardedByKey is the shorter way the comment in keyedHand warns about:
// each account always goes to the same worker. The order holds; a slow
// account stalls its worker's other accounts, and then the feeding loop.
func shardedByKey(events []deposit, workers int, apply func(deposit) string) []string {
	seed := maphash.MakeSeed()
	shards := make([]chan deposit, workers)
	results := make(chan string)
	var wg sync.WaitGroup
	for i := range shards {
		shards[i] = make(chan deposit, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range shards[i] {
				results <- apply(e)
			}
		}()
	}
	go func() {
		for _, e := range events {
			shards[maphash.String(seed, e.Account)%uint64(workers)] <- e
		}
		for _, s := range shards {
			close(s)
		}
		wg.Wait()
		close(results)
	}()
	var out []string
	for r := range results {
		out = append(out, r)
	}
	return out
}

// keyedEvents is the demo's stream: alice first, then ten events of each of
// three other accounts, interleaved with the rest of alice's.
func keyedEvents() []deposit {
	events := []deposit{{"alice", 0}}
	for i := range 30 {
		events = append(events, deposit{[]string{"bob", "carol", "dave"}[i%3], i / 3})
		if i%10 == 9 {
			events = append(events, deposit{"alice", i/10 + 1})
		}
	}
	return events
}

// keyedApply applies an event: alice's take 30 ms each, the others' no
// time. It returns "account seq".
func keyedApply(e deposit) string {
	if e.Account == "alice" {
		time.Sleep(30 * time.Millisecond)
	}
	return fmt.Sprintf("%s %d", e.Account, e.Seq)
}

// keyedReport says whether each account's events came out in order, and
// whether the other accounts were all done before alice's first event.
func keyedReport(w io.Writer, out []string) {
	next := map[string]int{}
	inOrder := true
	for _, r := range out {
		var acct string
		var seq int
		fmt.Sscanf(r, "%s %d", &acct, &seq)
		inOrder = inOrder && seq == next[acct]
		next[acct]++
	}
	firstAlice := slices.IndexFunc(out, func(r string) bool { return strings.HasPrefix(r, "alice ") })
	fmt.Fprintf(w, "%d events of 4 accounts, each account's in order: %v\n", len(out), inOrder)
	fmt.Fprintf(w, "bob, carol and dave all done before alice's first (30 ms) event: %v\n", firstAlice == len(out)-4)
}

func keyedDemoHand(w io.Writer) error {
	keyedReport(w, keyedHand(keyedEvents(), 3, keyedApply))
	return nil
}

func keyedDemoPipe(w io.Writer) error {
	out, err := keyedPipe(keyedEvents(), 3, keyedApply)
	keyedReport(w, out)
	return err
}

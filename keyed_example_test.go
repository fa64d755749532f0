package pipeline_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ec0f1147/pipeline"
)

func ExampleFanOutKeyed() {
	type event struct {
		account string
		amount  int
	}
	events := []event{{"alice", 10}, {"bob", 5}, {"alice", -3}, {"carol", 7}, {"bob", 2}, {"alice", 1}}
	// Calls of one account never overlap, so each balance needs no lock;
	// different accounts are applied in parallel.
	balances := map[string]*int{"alice": new(int), "bob": new(int), "carol": new(int)}
	p := pipeline.New(context.Background())
	applied := pipeline.FanOutKeyed(p, pipeline.Generate(p, events...), 3,
		func(e event) string { return e.account },
		func(_ context.Context, e event) (string, error) {
			b := balances[e.account]
			*b += e.amount
			return fmt.Sprintf("%s %+d = %d", e.account, e.amount, *b), nil
		})
	lines, err := pipeline.Collect(p, applied)
	if err != nil {
		fmt.Println(err)
	}
	// Accounts interleave in completion order; each account's lines keep
	// the order of its events.
	slices.SortStableFunc(lines, func(a, b string) int {
		return strings.Compare(strings.Fields(a)[0], strings.Fields(b)[0])
	})
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// alice +10 = 10
	// alice -3 = 7
	// alice +1 = 8
	// bob +5 = 5
	// bob +2 = 7
	// carol +7 = 7
}

func ExampleThrottleKeyed() {
	type request struct {
		user string
		n    int
	}
	const every = 100 * time.Millisecond
	p := pipeline.New(context.Background())
	reqs := pipeline.Generate(p, request{"ann", 1}, request{"ann", 2}, request{"bo", 1}, request{"cy", 1}, request{"ann", 3})
	// One request per user per 100ms: ann's second and third wait for
	// their turn, and bo and cy do not wait for ann.
	paced := pipeline.ThrottleKeyed(p, reqs, func(r request) string { return r.user }, every, 1)
	start := time.Now()
	var order []string
	for r := range pipeline.All(p, paced) {
		order = append(order, fmt.Sprintf("%s#%d", r.user, r.n))
	}
	fmt.Println(strings.Join(order, " "))
	fmt.Println("ann's three took at least 200ms:", time.Since(start) >= 2*every)
	fmt.Println(p.Wait())
	// Output:
	// ann#1 bo#1 cy#1 ann#2 ann#3
	// ann's three took at least 200ms: true
	// <nil>
}

func ExampleMaxPending() {
	gate := make(chan struct{})
	p := pipeline.New(context.Background())
	jobs := pipeline.Generate(p, 1, 2, 3, 4, 5, 6)
	// Every job has the same key, and the first one is slow: the others
	// wait inside the stage, at most two of them.
	out := pipeline.FanOutKeyed(p, jobs, 2, func(int) string { return "one key" },
		func(_ context.Context, n int) (int, error) {
			if n == 1 {
				<-gate
			}
			return n, nil
		}, pipeline.Name("jobs"), pipeline.MaxPending(2))
	for p.Stats()[1].Pending < 2 {
		time.Sleep(time.Millisecond)
	}
	st := p.Stats()[1]
	fmt.Printf("%s: %d taken, %d in its call, %d waiting\n", st.Name, st.In, st.Busy, st.Pending)
	close(gate)
	done, err := pipeline.Collect(p, out)
	fmt.Println(done, err)
	// Output:
	// jobs: 3 taken, 1 in its call, 2 waiting
	// [1 2 3 4 5 6] <nil>
}

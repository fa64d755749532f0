package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec0f1147/pipeline"
	"github.com/ec0f1147/pipeline/natsjs"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// demo is what the examples run on: an embedded server with a stream ORDERS
// (subject orders.new, holding the given payloads), a stream DEAD
// (orders.dead), a stream INVOICES (invoices.new) and a durable pull consumer
// "billing" of ORDERS.
type demo struct {
	srv  *server.Server
	dir  string
	nc   *nats.Conn
	js   jetstream.JetStream
	cons jetstream.Consumer
}

func newDemo(payloads ...string) *demo {
	dir, err := os.MkdirTemp("", "natsjs-example-")
	check(err)
	d := &demo{dir: dir}
	d.srv, err = startServer(dir, -1, true)
	check(err)
	d.nc, d.js, err = natsjs.Connect(context.Background(), d.srv.ClientURL())
	check(err)
	ctx := context.Background()
	for name, subject := range map[string]string{"ORDERS": "orders.new", "DEAD": "orders.dead", "INVOICES": "invoices.new"} {
		_, err := d.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}})
		check(err)
	}
	for _, p := range payloads {
		_, err := d.js.Publish(ctx, "orders.new", []byte(p))
		check(err)
	}
	d.cons, err = d.js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{
		Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
	})
	check(err)
	return d
}

func (d *demo) close() {
	d.nc.Close()
	stopServer(d.srv)
	os.RemoveAll(d.dir)
}

// settled waits until the server has every order of "billing" settled.
func (d *demo) settled() {
	for {
		info, err := d.cons.Info(context.Background())
		check(err)
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

type order struct {
	ID    int `json:"id"`
	Cents int `json:"cents"`
}

type invoice struct {
	Order int    `json:"order"`
	Total string `json:"total"`
}

func bill(_ context.Context, o order) (invoice, error) {
	if o.Cents < 0 {
		return invoice{}, fmt.Errorf("order %d: negative amount", o.ID)
	}
	return invoice{Order: o.ID, Total: fmt.Sprintf("$%d.%02d", o.Cents/100, o.Cents%100)}, nil
}

// A worker that turns orders into invoices: each order is acked only once
// its invoice is stored in the next stream. Another process could run the
// same code on the same durable consumer; the server would share the orders
// between them.
func Example() {
	d := newDemo(`{"id":1,"cents":1250}`, `{"id":2,"cents":399}`, `{"id":3,"cents":-5}`)
	defer d.close()
	ctx := context.Background()

	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead", natsjs.MaxDeliveries(1))
	check(err)
	p := pipeline.New(ctx)
	orders := natsjs.Source(p, c, natsjs.DecodeJSON[order])
	invoices := natsjs.Map(p, orders, 4, bill)
	go func() { d.settled(); p.Stop() }() // a real worker runs until it is told to stop
	err = natsjs.Publish(p, invoices, d.js, "invoices.new", 64, natsjs.EncodeJSON[invoice])

	st := c.Stats()
	fmt.Println(err, st.Acked, st.Published, st.Dead)
	// Output: <nil> 2 2 1
}

func ExampleSource() {
	d := newDemo(`{"id":1,"cents":100}`, `{"id":2,"cents":200}`, `not json`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead")
	check(err)

	p := pipeline.New(ctx)
	orders := natsjs.Source(p, c, natsjs.DecodeJSON[order])
	var mu sync.Mutex
	var ids []int
	go func() { d.settled(); p.Stop() }()
	err = natsjs.ForEach(p, orders, 1, func(_ context.Context, o order) error {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, o.ID)
		return nil
	})
	fmt.Println(ids, err, "poison:", c.Stats().Poison)
	// Output: [1 2] <nil> poison: 1
}

func ExampleMap() {
	d := newDemo(`{"id":1,"cents":1250}`, `{"id":2,"cents":-1}`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead",
		natsjs.MaxDeliveries(3), natsjs.Backoff(func(int) time.Duration { return time.Millisecond }))
	check(err)

	p := pipeline.New(ctx)
	invoices := natsjs.Map(p, natsjs.Source(p, c, natsjs.DecodeJSON[order]), 2, bill)
	go func() { d.settled(); p.Stop() }()
	for m := range pipeline.All(p, invoices) {
		fmt.Println(m.Value.Order, m.Value.Total)
		m.Ack() // a range loop is not a natsjs sink: settle each message yourself
	}
	st := c.Stats()
	fmt.Println("retried:", st.Retried, "dead:", st.Dead)
	// Output:
	// 1 $12.50
	// retried: 2 dead: 1
}

func ExampleForEach() {
	d := newDemo(`{"id":7,"cents":100}`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead")
	check(err)

	p := pipeline.New(ctx)
	go func() { d.settled(); p.Stop() }()
	err = natsjs.ForEach(p, natsjs.Source(p, c, natsjs.DecodeJSON[order]), 4, func(_ context.Context, o order) error {
		fmt.Println("shipped order", o.ID)
		return nil
	})
	fmt.Println(err, c.Stats().Acked)
	// Output:
	// shipped order 7
	// <nil> 1
}

func ExampleAck() {
	d := newDemo(`{"id":1,"cents":100}`, `{"id":2,"cents":0}`, `{"id":3,"cents":300}`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead")
	check(err)

	p := pipeline.New(ctx)
	orders := natsjs.Source(p, c, natsjs.DecodeJSON[order])
	paid := pipeline.Filter(p, orders, func(m *natsjs.Msg[order]) bool { return m.Value.Cents > 0 })
	go func() { d.settled(); p.Stop() }()
	err = natsjs.Ack(p, paid)
	st := c.Stats()
	fmt.Println(err, "acked:", st.Acked, "of which filtered out:", st.Discarded)
	// Output: <nil> acked: 3 of which filtered out: 1
}

func ExamplePublish() {
	d := newDemo(`{"id":1,"cents":1250}`, `{"id":2,"cents":399}`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead")
	check(err)

	p := pipeline.New(ctx)
	invoices := natsjs.Map(p, natsjs.Source(p, c, natsjs.DecodeJSON[order]), 2, bill)
	go func() { d.settled(); p.Stop() }()
	err = natsjs.Publish(p, invoices, d.js, "invoices.new", 16, natsjs.EncodeJSON[invoice])
	fmt.Println(err)

	st, _ := d.js.Stream(ctx, "INVOICES")
	var got []string
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := st.GetMsg(ctx, seq)
		check(err)
		got = append(got, string(m.Data)+" id="+m.Header.Get(jetstream.MsgIDHeader))
	}
	slices.Sort(got)
	fmt.Println(strings.Join(got, "\n"))
	// Output:
	// <nil>
	// {"order":1,"total":"$12.50"} id=ORDERS:1
	// {"order":2,"total":"$3.99"} id=ORDERS:2
}

func ExampleNewConsumer() {
	d := newDemo()
	defer d.close()
	ctx := context.Background()

	_, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.new")
	fmt.Println(errors.Is(err, pipeline.ErrInvalidArgument))
	fmt.Println(err)
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead", natsjs.Prefetch(32))
	fmt.Println(c != nil, err)
	// Output:
	// true
	// natsjs: NewConsumer: dead-letter subject "orders.new" is read by consumer ORDERS/billing (filter "orders.new"): pipeline: invalid argument
	// true <nil>
}

func ExampleConnect() {
	_, _, err := natsjs.Connect(context.Background(), "nats://127.0.0.1:1")
	fmt.Println(err)
	// Output: natsjs: cannot reach NATS server at nats://127.0.0.1:1: nats: no servers available for connection
}

func ExampleDecodeJSON() {
	o, err := natsjs.DecodeJSON[order]([]byte(`{"id":4,"cents":250}`))
	fmt.Println(o, err)
	_, err = natsjs.DecodeJSON[order]([]byte(`{"id":`))
	fmt.Println(err)
	// Output:
	// {4 250} <nil>
	// unexpected end of JSON input
}

func ExampleEncodeJSON() {
	data, err := natsjs.EncodeJSON(invoice{Order: 4, Total: "$2.50"})
	fmt.Println(string(data), err)
	// Output: {"order":4,"total":"$2.50"} <nil>
}

func ExampleDefaultBackoff() {
	for n := 1; n <= 9; n += 2 {
		fmt.Print(natsjs.DefaultBackoff(n), " ")
	}
	fmt.Println()
	// Output: 250ms 1s 4s 16s 30s
}

func ExampleMaxDeliveries() {
	d := newDemo(`{"id":1,"cents":-1}`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead",
		natsjs.MaxDeliveries(2), natsjs.Backoff(func(int) time.Duration { return time.Millisecond }))
	check(err)

	var calls atomic.Int64
	p := pipeline.New(ctx)
	go func() { d.settled(); p.Stop() }()
	err = natsjs.ForEach(p, natsjs.Source(p, c, natsjs.DecodeJSON[order]), 1, func(ctx context.Context, o order) error {
		calls.Add(1)
		_, err := bill(ctx, o)
		return err
	})
	fmt.Println(err, "calls:", calls.Load(), "dead:", c.Stats().Dead)

	st, _ := d.js.Stream(ctx, "DEAD")
	m, err := st.GetMsg(ctx, 1)
	check(err)
	fmt.Println(string(m.Data), m.Header.Get(natsjs.HeaderError), "after", m.Header.Get(natsjs.HeaderDeliveries), "deliveries")
	// Output:
	// <nil> calls: 2 dead: 1
	// {"id":1,"cents":-1} order 1: negative amount after 2 deliveries
}

func ExampleBackoff() {
	d := newDemo(`{"id":1,"cents":100}`)
	defer d.close()
	ctx := context.Background()
	var delays []time.Duration
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead", natsjs.MaxDeliveries(3),
		natsjs.Backoff(func(delivery int) time.Duration {
			delays = append(delays, time.Duration(delivery)*time.Millisecond) // one worker: no race
			return time.Duration(delivery) * time.Millisecond
		}))
	check(err)

	p := pipeline.New(ctx)
	go func() { d.settled(); p.Stop() }()
	err = natsjs.ForEach(p, natsjs.Source(p, c, natsjs.DecodeJSON[order]), 1, func(context.Context, order) error {
		if len(delays) < 2 {
			return errors.New("not yet")
		}
		return nil
	})
	fmt.Println(err, delays, c.Stats().Acked)
	// Output: <nil> [1ms 2ms] 1
}

func ExamplePrefetch() {
	d := newDemo(`{"id":1,"cents":100}`, `{"id":2,"cents":100}`, `{"id":3,"cents":100}`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead", natsjs.Prefetch(1))
	check(err)

	p := pipeline.New(ctx)
	go func() { d.settled(); p.Stop() }()
	err = natsjs.Ack(p, natsjs.Source(p, c, natsjs.DecodeJSON[order]))
	fmt.Println(err, c.Stats().Acked)
	// Output: <nil> 3
}

func ExampleConsumer_Stats() {
	d := newDemo(`{"id":1,"cents":100}`, `oops`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead")
	check(err)

	p := pipeline.New(ctx)
	go func() { d.settled(); p.Stop() }()
	check(natsjs.Ack(p, natsjs.Source(p, c, natsjs.DecodeJSON[order])))
	fmt.Println(c.Stats())
	// Output: received=2 redelivered=0 acked=1 discarded=0 retried=0 dead=1 poison=1 released=0 published=0 settle_errors=0 in_flight=0
}

func ExampleStats_String() {
	fmt.Println(natsjs.Stats{Received: 10, Acked: 9, Dead: 1, Poison: 1})
	// Output: received=10 redelivered=0 acked=9 discarded=0 retried=0 dead=1 poison=1 released=0 published=0 settle_errors=0 in_flight=0
}

func ExampleMsg() {
	d := newDemo(`{"id":1,"cents":100}`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead")
	check(err)

	p := pipeline.New(ctx)
	m, ok, err := pipeline.First(p, natsjs.Source(p, c, natsjs.DecodeJSON[order]))
	fmt.Println(ok, err)
	fmt.Println(m.Value, m.ID(), m.Subject(), m.Deliveries(), string(m.Data()), len(m.Header()))
	m.Ack() // First is not a natsjs sink: settle the message yourself
	fmt.Println(c.Stats().Acked)
	// Output:
	// true <nil>
	// {1 100} ORDERS:1 orders.new 1 {"id":1,"cents":100} 0
	// 1
}

func ExampleMsg_Discard() {
	d := newDemo(`{"id":1,"cents":100}`, `{"id":2,"cents":100}`)
	defer d.close()
	ctx := context.Background()
	c, err := natsjs.NewConsumer(ctx, d.js, d.cons, "orders.dead")
	check(err)

	p := pipeline.New(ctx)
	// DropOnFull and Filter call Discard on the items they set aside, and so
	// does an OnError handler that skips one:
	checked := pipeline.FanOut(p, natsjs.Source(p, c, natsjs.DecodeJSON[order]), 1,
		func(_ context.Context, m *natsjs.Msg[order]) (*natsjs.Msg[order], error) {
			if m.Value.ID == 2 {
				return nil, errors.New("duplicate order")
			}
			return m, nil
		}, pipeline.OnError(func(*pipeline.StageError) error { return nil }))
	go func() { d.settled(); p.Stop() }()
	err = natsjs.Ack(p, checked)
	st := c.Stats()
	fmt.Println(err, st.Acked, st.Discarded, st.Dead)
	// Output: <nil> 2 1 0
}

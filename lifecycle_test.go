package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ec0f1147/pipeline"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFinally(t *testing.T) {
	t.Run("runs once, after every goroutine, before Wait returns", func(t *testing.T) {
		p := pipeline.New(context.Background())
		out := pipeline.FanOut(p, pipeline.Generate(p, 1, 2, 3), 2, func(_ context.Context, v int) (int, error) {
			return v, nil
		})
		calls := 0
		var seen error = errors.New("not called")
		p.Finally(func(result error) error {
			calls++
			seen = result
			// Every stage has returned: Stats shows nothing busy and all counted.
			for _, st := range p.Stats() {
				assert.Zero(t, st.Busy)
			}
			return nil
		})
		got, err := pipeline.Collect(p, out)
		require.NoError(t, err)
		assert.Len(t, got, 3)
		assert.Equal(t, 1, calls)
		assert.NoError(t, seen)
		assert.NoError(t, p.Wait())
		assert.Equal(t, 1, calls, "a second Wait does not run the hooks again")
	})

	t.Run("its error becomes the result of a clean end, for every Wait", func(t *testing.T) {
		p := pipeline.New(context.Background())
		lost := errors.New("3 messages unsettled")
		p.Finally(func(error) error { return lost })
		err := pipeline.Drain(p, pipeline.Generate(p, 1, 2))
		assert.ErrorIs(t, err, lost)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.ErrorIs(t, p.Wait(), lost)
			}()
		}
		wg.Wait()
	})

	t.Run("never replaces an earlier failure, and is told it", func(t *testing.T) {
		p := pipeline.New(context.Background())
		boom := errors.New("boom")
		var seen error
		p.Finally(func(result error) error {
			seen = result
			return errors.New("later")
		})
		err := pipeline.ForEach(p, pipeline.Generate(p, 1), 1, func(context.Context, int) error { return boom })
		assert.ErrorIs(t, err, boom)
		assert.ErrorIs(t, seen, boom)
	})

	t.Run("hooks run in registration order, each seeing the result so far", func(t *testing.T) {
		p := pipeline.New(context.Background())
		first := errors.New("first")
		var order []string
		var secondSaw error
		p.Finally(func(error) error { order = append(order, "a"); return first })
		p.Finally(func(r error) error { order = append(order, "b"); secondSaw = r; return errors.New("second") })
		err := p.Wait()
		assert.Equal(t, []string{"a", "b"}, order)
		assert.ErrorIs(t, secondSaw, first)
		assert.ErrorIs(t, err, first)
	})

	t.Run("a panic in a hook is its error", func(t *testing.T) {
		p := pipeline.New(context.Background())
		p.Finally(func(error) error { panic("hook broke") })
		err := p.Wait()
		var pe *pipeline.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "hook broke", pe.Value)
	})

	t.Run("after the end it runs at once and changes nothing", func(t *testing.T) {
		p := pipeline.New(context.Background())
		require.NoError(t, pipeline.Drain(p, pipeline.Generate(p, 1)))
		called := false
		p.Finally(func(result error) error {
			called = true
			assert.NoError(t, result)
			return errors.New("too late")
		})
		assert.True(t, called)
		assert.NoError(t, p.Wait())
	})

	t.Run("runs after a drain by Stop", func(t *testing.T) {
		p := pipeline.New(context.Background())
		src := pipeline.Produce(p, func(ctx context.Context, emit func(int) error) error {
			for i := 0; ; i++ {
				if err := emit(i); err != nil {
					return err
				}
			}
		})
		var delivered, atEnd int
		p.Finally(func(error) error { atEnd = delivered; return nil })
		err := pipeline.ForEach(p, src, 1, func(_ context.Context, v int) error {
			delivered++
			if v == 10 {
				p.Stop()
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, delivered, atEnd, "every delivered item was handled before the hook ran")
	})

	t.Run("a nil hook or a nil pipeline is ignored", func(t *testing.T) {
		p := pipeline.New(context.Background())
		p.Finally(nil)
		assert.NoError(t, p.Wait())
		var nilP *pipeline.Pipeline
		assert.NotPanics(t, func() { nilP.Finally(func(error) error { return nil }) })
	})
}

func TestAttach(t *testing.T) {
	type key struct{}
	t.Run("one value per pipeline and key, made once", func(t *testing.T) {
		p, q := pipeline.New(context.Background()), pipeline.New(context.Background())
		made := 0
		mk := func() *int { made++; v := made; return &v }
		a := pipeline.Attach(p, key{}, mk)
		b := pipeline.Attach(p, key{}, mk)
		c := pipeline.Attach(q, key{}, mk)
		assert.Same(t, a, b)
		assert.NotSame(t, a, c)
		assert.Equal(t, 2, made)
		type other struct{}
		assert.Equal(t, "x", pipeline.Attach(p, other{}, func() string { return "x" }))
		require.NoError(t, p.Wait())
		require.NoError(t, q.Wait())
	})

	t.Run("safe for concurrent use", func(t *testing.T) {
		p := pipeline.New(context.Background())
		var mu sync.Mutex
		made := 0
		var wg sync.WaitGroup
		got := make([]*sync.Mutex, 8)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i] = pipeline.Attach(p, key{}, func() *sync.Mutex {
					mu.Lock()
					made++
					mu.Unlock()
					return new(sync.Mutex)
				})
			}()
		}
		wg.Wait()
		assert.Equal(t, 1, made)
		for _, m := range got {
			assert.Same(t, got[0], m)
		}
		require.NoError(t, p.Wait())
	})

	t.Run("a nil pipeline gets a fresh value", func(t *testing.T) {
		assert.Equal(t, 7, pipeline.Attach(nil, key{}, func() int { return 7 }))
	})
}

// An adapter settles what its stages left behind when the pipeline ends, and
// reports it as the pipeline's result.
func ExamplePipeline_Finally() {
	p := pipeline.New(context.Background())
	var mu sync.Mutex
	leased := map[int]bool{} // what the source handed out and nobody returned
	src := pipeline.Produce(p, func(_ context.Context, emit func(int) error) error {
		for i := 1; i <= 4; i++ {
			mu.Lock()
			leased[i] = true
			mu.Unlock()
			if err := emit(i); err != nil {
				return err
			}
		}
		return nil
	})
	p.Finally(func(result error) error {
		if result == nil && len(leased) > 0 {
			return fmt.Errorf("%d lease(s) never returned", len(leased))
		}
		return nil
	})
	err := pipeline.ForEach(p, src, 1, func(_ context.Context, i int) error {
		if i != 3 { // a bug: item 3 is never returned
			mu.Lock()
			delete(leased, i)
			mu.Unlock()
		}
		return nil
	})
	fmt.Println(err)
	// Output: 1 lease(s) never returned
}

// Stages of one adapter share state through the pipeline they are built on.
func ExampleAttach() {
	type registryKey struct{}
	type registry struct{ sources []string }
	p := pipeline.New(context.Background())
	reg := func() *registry {
		return pipeline.Attach(p, registryKey{}, func() *registry { return &registry{} })
	}
	reg().sources = append(reg().sources, "orders")
	reg().sources = append(reg().sources, "refunds")
	fmt.Println(reg().sources)
	_ = p.Wait()
	// Output: [orders refunds]
}

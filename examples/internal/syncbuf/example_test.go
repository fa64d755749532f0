package syncbuf_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ec0f1147/pipeline/examples/internal/syncbuf"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A program's goroutines write while the test reads.
func ExampleBuffer() {
	var out syncbuf.Buffer
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(&out, "line %d\n", i)
		}()
	}
	_ = out.String() // safe while they write
	wg.Wait()
	fmt.Println(len(out.String()))
	// Output: 21
}

// ExampleBuffer_Write shows Write and String.
func ExampleBuffer_Write() {
	var out syncbuf.Buffer
	_, _ = out.Write([]byte("hello"))
	fmt.Println(out.String())
	// Output: hello
}

// ExampleBuffer_After waits for a program to say where it listens.
func ExampleBuffer_After() {
	var out syncbuf.Buffer
	fmt.Fprint(&out, "starting\nlive view: http://127.0.0.1:8080/")
	_, ok := out.After("live view: ")
	fmt.Println(ok) // the line is not whole yet
	fmt.Fprint(&out, "\n")
	url, ok := out.After("live view: ")
	fmt.Println(url, ok)
	// Output:
	// false
	// http://127.0.0.1:8080/ true
}

// ExampleBuffer_AwaitAfter waits for a line another goroutine writes.
func ExampleBuffer_AwaitAfter() {
	var out syncbuf.Buffer
	go fmt.Fprint(&out, "live view: http://127.0.0.1:8080/\n")
	url, ok := out.AwaitAfter("live view: ", 10*time.Second)
	fmt.Println(url, ok)
	_, ok = out.AwaitAfter("never: ", 5*time.Millisecond)
	fmt.Println(ok)
	// Output:
	// http://127.0.0.1:8080/ true
	// false
}

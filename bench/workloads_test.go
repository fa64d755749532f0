package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// The workloads of issue 5, at full size. The correctness tests run the same
// functions on small inputs.
const (
	w1Items = 1_000_000 // W1, W2: generate → map(x*3) → filter(even) → collect
	w2Work  = 4         // W2 workers

	w3Items     = 2_000 // W3: items that each sleep w3Sleep, on w3Workers workers
	w3Workers   = 100
	w3Sleep     = time.Millisecond
	wideItems   = 20_000 // Wide: W3 on twenty times the items and ten times the workers
	wideWorkers = 1_000

	w4Items  = 20_000 // W4: items of ~50 µs of hashing, on 1 and 2 workers
	w4Rounds = 640    // chained SHA-256 of 32 bytes: ~78 ns each with SHA-NI

	w5Items   = 1_000_000 // W5: generate → batch(100) → collect
	w5Size    = 100
	w5MaxWait = 10 * time.Millisecond // never reached: the batches fill first
)

// mapFilter is the W1 and W2 work: x*3, keep the even results.
var mapFilter = work{fn: triple, keep: even}

// sleepy is the W3 work: wait w3Sleep, pass the item on.
var sleepy = work{fn: sleep}

// hashing is the W4 work: w4Rounds of SHA-256, real CPU.
var hashing = work{fn: burn}

func triple(x int) int { return x * 3 }

func even(x int) bool { return x%2 == 0 }

func sleep(x int) int {
	time.Sleep(w3Sleep)
	return x
}

// burn hashes x w4Rounds times, each round hashing the previous digest, and
// returns the first 8 bytes of the last one, so no round can be skipped.
func burn(x int) int {
	var d [sha256.Size]byte
	binary.LittleEndian.PutUint64(d[:], uint64(x))
	for range w4Rounds {
		d = sha256.Sum256(d[:])
	}
	return int(binary.LittleEndian.Uint64(d[:8]))
}

// ints returns 0, 1, …, n-1: the input every contender is given.
func ints(n int) []int {
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	return in
}

//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// exFirstWrite is a writer safe for concurrent use that closes started at
// its first write.
type exFirstWrite struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	once    sync.Once
	started chan struct{}
}

func (w *exFirstWrite) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

// runSignalled runs the program over a tree of n files with SIGUSR1 as its
// signal, sends it once progress is printed (the
// pipeline is running then), and returns stdout, the rows and the error.
func runSignalled(t *testing.T, n int, extra ...string) (string, []Row, error) {
	t.Helper()
	src := exBigTree(t, n)
	db := filepath.Join(t.TempDir(), "index.db")
	stderr := &exFirstWrite{started: make(chan struct{})}
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() {
		args := append([]string{"-src", src, "-db", db, "-workers", "1", "-batch", "10",
			"-progress", "lines", "-every", "1ms"}, extra...)
		done <- run(context.Background(), args, &stdout, stderr, syscall.SIGUSR1)
	}()
	select {
	case <-stderr.started:
	case err := <-done:
		t.Fatalf("the run ended before printing progress: %v", err)
	}
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end after the signal")
	}
	return stdout.String(), exAllRows(t, db), err
}

func TestRun_FirstSignalStopsTheWalkAndCommitsEveryFileFound(t *testing.T) {
	const total = 1500
	stdout, rows, err := runSignalled(t, total)
	require.NoError(t, err)
	assert.Contains(t, stdout, "stopped early: every file found before the stop was committed")
	files := map[string]bool{}
	for _, r := range rows {
		files[r.File] = true
	}
	assert.Less(t, len(files), total, "the walk was stopped before the end")
	t.Logf("%d of %d files indexed before the stop", len(files), total)
	assert.Len(t, rows, 3*len(files), "every row of every file found was committed")
}

func TestJob_SecondSignalCancels(t *testing.T) {
	src := exBigTree(t, 300)
	db := filepath.Join(t.TempDir(), "index.db")
	// Until Wait runs the insert stage nothing drains the pipeline: after a
	// Stop it cannot finish, so the second signal finds it still running.
	// Batches of one: the 150 or more rows of the first 50 files overflow every
	// buffer between the walk and the insert, so nothing can finish.
	job, err := Start(context.Background(), Config{Src: src, DB: db, Workers: 2, BatchSize: 1, BatchWait: time.Hour})
	require.NoError(t, err)
	defer pipeline.StopOnSignal(job.Pipeline(), syscall.SIGUSR1)()
	require.Eventually(t, func() bool { return job.Pipeline().Stats()[0].Out >= 50 }, 10*time.Second, time.Millisecond)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	require.Eventually(t, func() bool { return job.stopped.Load() }, 10*time.Second, time.Millisecond)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGUSR1))
	<-job.Pipeline().Context().Done()
	sum, err := job.Wait()
	require.ErrorIs(t, err, pipeline.ErrSignal)
	assert.True(t, sum.Stopped)
	assert.Len(t, exAllRows(t, db), int(sum.Declarations), "the summary counts exactly the committed rows")
}

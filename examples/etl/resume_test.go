package main

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exFilesBySeq returns how many rows each file number has in the database.
func exFilesBySeq(t *testing.T, path string) map[int]int {
	t.Helper()
	db, err := openDB(path)
	require.NoError(t, err)
	defer db.Close()
	rs, err := db.Query(`SELECT seq, COUNT(*) FROM decls GROUP BY seq`)
	require.NoError(t, err)
	defer rs.Close()
	out := map[int]int{}
	for rs.Next() {
		var seq, n int
		require.NoError(t, rs.Scan(&seq, &n))
		out[seq] = n
	}
	require.NoError(t, rs.Err())
	return out
}

// exCheckpoint reads the progress row.
func exCheckpoint(t *testing.T, path string) (next int, done bool) {
	t.Helper()
	db, err := openDB(path)
	require.NoError(t, err)
	defer db.Close()
	err = db.QueryRow(`SELECT next, done FROM progress`).Scan(&next, &done)
	if err == sql.ErrNoRows {
		return 0, false
	}
	require.NoError(t, err)
	return next, done
}

// TestJob_ResumesExactlyOnceAfter50Interruptions stops or cancels the job
// at a random moment 50 times in a row, each run resuming the one before,
// then lets it finish: the database equals that of one uninterrupted run,
// with every file indexed once. After each interruption the checkpoint
// never claims a file whose rows are not all in the database.
func TestJob_ResumesExactlyOnceAfter50Interruptions(t *testing.T) {
	const total = 400 // three declarations each
	src := exBigTree(t, total)
	cfg := Config{Src: src, Workers: 3, BatchSize: 5, BatchWait: time.Millisecond, CommitEvery: time.Millisecond}

	cfg.DB = filepath.Join(t.TempDir(), "once.db")
	began := time.Now()
	job, err := Start(context.Background(), cfg)
	require.NoError(t, err)
	sum, err := job.Wait()
	require.NoError(t, err)
	once := time.Since(began)
	require.Equal(t, total, sum.Next)
	want := exAllRows(t, cfg.DB)
	require.Len(t, want, 3*total)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d; one run takes %v", seed, once)
	r := rand.New(rand.NewPCG(seed, 20))
	cfg.DB = filepath.Join(t.TempDir(), "index.db")
	next, interrupted, resumed := 0, 0, 0
	for attempt := range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		job, err := Start(ctx, cfg)
		require.NoError(t, err)
		hard := r.IntN(2) == 0
		// Each run gets a small share of what one whole run takes (a Stop then
		// drains what the walk has found, which is more): most runs resume.
		timer := time.AfterFunc(time.Duration(r.Int64N(int64(once/150)+1)), func() {
			if hard {
				cancel()
			} else {
				job.Stop()
			}
		})
		sum, err := job.Wait()
		timer.Stop()
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.Canceled, "attempt %d", attempt)
		}
		if sum.Resumed > 0 {
			resumed++
			assert.Equal(t, next, sum.Resumed, "attempt %d resumes where the last stopped", attempt)
		}
		at, done := exCheckpoint(t, cfg.DB)
		rows := exFilesBySeq(t, cfg.DB)
		for seq, n := range rows {
			assert.LessOrEqual(t, n, 3, "attempt %d: file %d indexed twice", attempt, seq)
		}
		for seq := range at {
			require.Equal(t, 3, rows[seq], "attempt %d: checkpoint %d claims file %d, which is not all in", attempt, at, seq)
		}
		if done { // this run got to the end: the next one starts afresh
			next = 0
			continue
		}
		interrupted++
		assert.GreaterOrEqual(t, at, next, "the checkpoint moves forward")
		if !hard && err == nil {
			assert.Equal(t, sum.Next, at, "after Stop every file found is committed")
		}
		next = at
	}
	t.Logf("%d runs interrupted, %d resumed, checkpoint %d of %d files", interrupted, resumed, next, total)
	assert.Positive(t, resumed, "some run resumed")

	job, err = Start(context.Background(), cfg)
	require.NoError(t, err)
	sum, err = job.Wait()
	require.NoError(t, err)
	assert.Equal(t, next, sum.Resumed)
	assert.Equal(t, total, sum.Next)
	assert.Equal(t, want, exAllRows(t, cfg.DB), "the same database as one uninterrupted run")
	rows := exFilesBySeq(t, cfg.DB)
	assert.Len(t, rows, total, "no file missed")
	for seq, n := range rows {
		assert.Equal(t, 3, n, "file %d", seq)
	}
	_, done := exCheckpoint(t, cfg.DB)
	assert.True(t, done)
}

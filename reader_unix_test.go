//go:build unix

package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// rdFIFO makes a named pipe holding data, kept open for writing (so that
// a reader's open does not block and its reads wait for more) until the test
// ends.
func rdFIFO(t *testing.T, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fifo")
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	_, err = w.WriteString(data)
	require.NoError(t, err)
	return path
}

func TestFileLines_ReadBlockedOnAPipe(t *testing.T) {
	t.Run("cancel ends it promptly", func(t *testing.T) {
		path := rdFIFO(t, "one\ntwo\n")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := pipeline.New(ctx)
		out := pipeline.FileLines(p, path, pipeline.Position{}, 100)
		assert.Equal(t, "one", (<-out).Text)
		assert.Equal(t, "two", (<-out).Text)
		cancel() // FileLines is now blocked reading the pipe
		got, err := rdCollect(t, p, out)
		require.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, got)
	})

	t.Run("Stop ends it cleanly", func(t *testing.T) {
		path := rdFIFO(t, "one\ntwo\n")
		p := pipeline.New(context.Background())
		out := pipeline.FileLines(p, path, pipeline.Position{}, 100)
		assert.Equal(t, "one", (<-out).Text)
		assert.Equal(t, "two", (<-out).Text)
		p.Stop()
		got, err := rdCollect(t, p, out)
		require.NoError(t, err, "a stop while blocked on the pipe is a clean end")
		assert.Empty(t, got)
	})

	t.Run("a saved position cannot be sought in a pipe", func(t *testing.T) {
		path := rdFIFO(t, "one\ntwo\n")
		p := pipeline.New(context.Background())
		_, err := rdCollect(t, p, pipeline.FileLines(p, path, pipeline.Position{Offset: 4, Line: 2}, 100))
		require.ErrorIs(t, err, syscall.ESPIPE)
		assert.Equal(t, path, rdReadError(t, err).Path)
	})
}

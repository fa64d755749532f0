package pipeline_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ec0f1147/pipeline"
)

// Reader sources: every item's Pos must cover exactly its bytes of the
// input, resuming from a saved Pos.Next() must give exactly the items after
// it, and every failure must name where it happened.

// rdBound is how long a reader test may wait for a pipeline to end.
const rdBound = 10 * time.Second

// rdChunky hands out its data in reads of random sizes, so that lines and
// records fall across buffer fills at random places.
type rdChunky struct {
	data []byte
	r    *rand.Rand
}

func (c *rdChunky) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(c.data), 1+c.r.IntN(300))
	copy(b, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// rdEndless reads as the lines "0\n", "1\n", … without end.
type rdEndless struct {
	next    int
	pending []byte
}

func (e *rdEndless) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		if len(e.pending) == 0 {
			e.pending = []byte(strconv.Itoa(e.next) + "\n")
			e.next++
		}
		c := copy(b[n:], e.pending)
		e.pending = e.pending[c:]
		n += c
	}
	return n, nil
}

// rdFailing returns data, then err.
type rdFailing struct {
	data []byte
	err  error
}

func (f *rdFailing) Read(b []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(b, f.data)
	f.data = f.data[n:]
	return n, nil
}

// rdCollect gathers a source's items and the pipeline's result, within rdBound.
func rdCollect[T any](t *testing.T, p *pipeline.Pipeline, out <-chan T) ([]T, error) {
	t.Helper()
	type result struct {
		items []T
		err   error
	}
	done := make(chan result, 1)
	go func() {
		items, err := pipeline.Collect(p, out)
		done <- result{items, err}
	}()
	select {
	case r := <-done:
		return r.items, r.err
	case <-time.After(rdBound):
		t.Fatalf("the pipeline did not end within %v", rdBound)
		return nil, nil
	}
}

// rdWrite writes data to a new file in t's temporary directory.
func rdWrite(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "input")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

// rdReadError returns the *ReadError inside a pipeline's failure, which must
// be a *StageError.
func rdReadError(t *testing.T, err error) *pipeline.ReadError {
	t.Helper()
	var se *pipeline.StageError
	require.ErrorAs(t, err, &se, "a reader's failure is a StageError")
	var re *pipeline.ReadError
	require.ErrorAs(t, err, &re)
	return re
}

// rdLine is what the model expects of one line: its raw bytes and its text.
type rdLine struct{ raw, text string }

// rdModelLines splits input as Lines promises to: at "\n", dropping a "\r"
// before it or at the very end.
func rdModelLines(input string) []rdLine {
	var lines []rdLine
	for input != "" {
		raw := input
		if i := strings.IndexByte(input, '\n'); i >= 0 {
			raw = input[:i+1]
		}
		input = input[len(raw):]
		text := strings.TrimSuffix(raw, "\n")
		text = strings.TrimSuffix(text, "\r")
		lines = append(lines, rdLine{raw, text})
	}
	return lines
}

// rdRandomLines makes random text: lines of random lengths (a few past the
// 64 KiB buffer when long is set) over an alphabet with "\r" and multibyte
// runes, ended by "\n" or "\r\n", the last line sometimes without an ending.
func rdRandomLines(r *rand.Rand, long bool) string {
	alphabet := []string{"a", "b", " ", ",", "\r", "é", "語", "\t"}
	var b strings.Builder
	n := r.IntN(40)
	for i := range n {
		size := r.IntN(12)
		switch {
		case r.IntN(5) == 0:
			size = r.IntN(200)
		case long && r.IntN(15) == 0:
			size = 60_000 + r.IntN(80_000)
		}
		for range size {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		if i == n-1 && r.IntN(3) == 0 {
			break // no line ending
		}
		if r.IntN(3) == 0 {
			b.WriteString("\r\n")
		} else {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// rdCheckLines checks got against the model of input, the first line at
// offset 0 and line 1: texts, exact byte spans, line numbers.
func rdCheckLines(t *testing.T, input string, got []pipeline.Line) {
	t.Helper()
	want := rdModelLines(input)
	require.Len(t, got, len(want))
	off := int64(0)
	for i, l := range got {
		w := want[i]
		endLine := int64(i + 1)
		if strings.HasSuffix(w.raw, "\n") {
			endLine++
		}
		wantPos := pipeline.Position{Offset: off, End: off + int64(len(w.raw)), Line: int64(i + 1), EndLine: endLine}
		require.Equal(t, wantPos, l.Pos, "line %d", i+1)
		require.Equal(t, w.text, l.Text, "line %d", i+1)
		require.Equal(t, w.raw, input[l.Pos.Offset:l.Pos.End], "line %d: its span is its bytes", i+1)
		off = l.Pos.End
	}
	require.Equal(t, int64(len(input)), off, "the lines cover the whole input")
}

func TestLines(t *testing.T) {
	t.Run("every line's position covers exactly its bytes", func(t *testing.T) {
		r := newRand(t)
		for c := range propertyCases {
			input := rdRandomLines(r, c%5 == 0)
			p := pipeline.New(context.Background())
			got, err := rdCollect(t, p, pipeline.Lines(p, &rdChunky{[]byte(input), r}, 1<<20))
			require.NoError(t, err)
			rdCheckLines(t, input, got)
		}
	})

	t.Run("a line longer than maxLen fails at that line, after every line before it", func(t *testing.T) {
		r := newRand(t)
		for range propertyCases * 3 {
			input := rdRandomLines(r, r.IntN(4) == 0)
			maxLen := 1 + r.IntN(40)
			if r.IntN(4) == 0 {
				maxLen = 60_000 + r.IntN(80_000)
			}
			p := pipeline.New(context.Background())
			got, err := rdCollect(t, p, pipeline.Lines(p, &rdChunky{[]byte(input), r}, maxLen))

			want := rdModelLines(input)
			first := len(want) // the first line too long, if any
			off := int64(0)
			for i, w := range want {
				if len(w.text) > maxLen {
					first = i
					break
				}
				off += int64(len(w.raw))
			}
			require.Len(t, got, first, "every line before the long one is emitted")
			for i, l := range got {
				require.Equal(t, want[i].text, l.Text)
			}
			if first == len(want) {
				require.NoError(t, err)
				continue
			}
			require.ErrorIs(t, err, pipeline.ErrTooLong)
			re := rdReadError(t, err)
			assert.Equal(t, int64(first+1), re.Pos.Line)
			assert.Equal(t, off, re.Pos.Offset)
			assert.Contains(t, err.Error(), fmt.Sprintf("line %d, byte %d", first+1, off))
			assert.Contains(t, err.Error(), fmt.Sprintf("longer than %d bytes", maxLen))
		}
	})

	t.Run("a line of exactly maxLen bytes is accepted, whatever its ending", func(t *testing.T) {
		for _, input := range []string{"abcde\n", "abcde\r\n", "abcde", "abcde\r", "abc\r\nabcde\nab"} {
			p := pipeline.New(context.Background())
			got, err := rdCollect(t, p, pipeline.Lines(p, strings.NewReader(input), 5))
			require.NoError(t, err, "%q", input)
			rdCheckLines(t, input, got)
		}
		p := pipeline.New(context.Background())
		_, err := rdCollect(t, p, pipeline.Lines(p, strings.NewReader("abc\nabcdef\r\n"), 5))
		require.ErrorIs(t, err, pipeline.ErrTooLong)
		assert.Equal(t, pipeline.Position{Offset: 4, End: 12, Line: 2, EndLine: 2}, rdReadError(t, err).Pos,
			"End is how far the long line was read")
	})

	t.Run("CRLF endings are removed from Text and counted in Pos; a lone CR stays", func(t *testing.T) {
		input := "a\r\nb\n\r\nc\rd\r\ne\r"
		p := pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.Lines(p, strings.NewReader(input), 10))
		require.NoError(t, err)
		assert.Equal(t, []pipeline.Line{
			{Text: "a", Pos: pipeline.Position{Offset: 0, End: 3, Line: 1, EndLine: 2}},
			{Text: "b", Pos: pipeline.Position{Offset: 3, End: 5, Line: 2, EndLine: 3}},
			{Text: "", Pos: pipeline.Position{Offset: 5, End: 7, Line: 3, EndLine: 4}},
			{Text: "c\rd", Pos: pipeline.Position{Offset: 7, End: 12, Line: 4, EndLine: 5}},
			{Text: "e", Pos: pipeline.Position{Offset: 12, End: 14, Line: 5, EndLine: 5}},
		}, got)
	})

	t.Run("an empty input and a final newline give no empty last line", func(t *testing.T) {
		for input, want := range map[string]int{"": 0, "\n": 1, "a\n": 1, "a\n\n": 2} {
			p := pipeline.New(context.Background())
			got, err := rdCollect(t, p, pipeline.Lines(p, strings.NewReader(input), 10))
			require.NoError(t, err)
			assert.Len(t, got, want, "%q", input)
		}
	})

	t.Run("a read error fails the pipeline naming where the unfinished line starts", func(t *testing.T) {
		broken := errors.New("disk on fire")
		p := pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.Lines(p, &rdFailing{[]byte("one\ntwo\nthr"), broken}, 10))
		require.ErrorIs(t, err, broken)
		assert.Equal(t, []string{"one", "two"}, rdTexts(got))
		re := rdReadError(t, err)
		assert.Equal(t, pipeline.Position{Offset: 8, End: 11, Line: 3, EndLine: 3}, re.Pos)
		assert.Empty(t, re.Path)
		assert.Equal(t, "pipeline: stage lines#1: read line 3, byte 8: disk on fire", err.Error())
	})

	t.Run("Stop ends it cleanly and every line emitted arrives, with no gap", func(t *testing.T) {
		r := newRand(t)
		for range stopRounds {
			p := pipeline.New(context.Background(), pipeline.DefaultBuffer(r.IntN(8)))
			out := pipeline.Lines(p, &rdEndless{}, 100)
			stopAfter := 1 + r.IntN(500)
			var got []pipeline.Line
			for l := range out {
				got = append(got, l)
				if len(got) == stopAfter {
					p.Stop()
				}
			}
			require.NoError(t, p.Wait())
			require.GreaterOrEqual(t, len(got), stopAfter)
			assert.Equal(t, uint64(len(got)), p.Stats()[0].Out, "the sink got every line the source emitted")
			off := int64(0)
			for i, l := range got {
				require.Equal(t, strconv.Itoa(i), l.Text, "no line lost or repeated")
				require.Equal(t, off, l.Pos.Offset)
				off = l.Pos.End
			}
		}
	})

	t.Run("cancel ends it promptly while its output is full", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := pipeline.New(ctx)
		out := pipeline.Lines(p, &rdEndless{}, 100) // nobody reads it
		require.Eventually(t, func() bool { return p.Stats()[0].Out == pipeline.DefaultBufferSize },
			rdBound, time.Millisecond)
		cancel()
		ended := make(chan error, 1)
		go func() { ended <- p.Wait() }()
		select {
		case err := <-ended:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(rdBound):
			t.Fatal("Lines did not return after cancel")
		}
		for range out {
		}
	})

	t.Run("its default name is lines#N and Name overrides it", func(t *testing.T) {
		p := pipeline.New(context.Background())
		a := pipeline.Generate(p, 1)
		b := pipeline.Lines(p, strings.NewReader("x\n"), 10)
		c := pipeline.Lines(p, strings.NewReader("y\n"), 10, pipeline.Name("log"))
		require.NoError(t, pipeline.Drain(p, pipeline.Merge(p, b, c)))
		<-a
		st := p.Stats()
		assert.Equal(t, "lines#2", st[1].Name)
		assert.Equal(t, "log", st[2].Name)
	})
}

func rdTexts(lines []pipeline.Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

func TestFileLines(t *testing.T) {
	t.Run("resuming from a saved Next yields exactly the remaining lines", func(t *testing.T) {
		r := newRand(t)
		for c := range propertyCases {
			input := rdRandomLines(r, c%10 == 0)
			path := rdWrite(t, []byte(input))
			p := pipeline.New(context.Background())
			all, err := rdCollect(t, p, pipeline.FileLines(p, path, pipeline.Position{}, 1<<20))
			require.NoError(t, err)
			rdCheckLines(t, input, all)

			k := r.IntN(len(all) + 1)
			var from pipeline.Position
			if k > 0 {
				from = all[k-1].Pos.Next()
			}
			p = pipeline.New(context.Background())
			rest, err := rdCollect(t, p, pipeline.FileLines(p, path, from, 1<<20))
			require.NoError(t, err)
			if k == len(all) {
				assert.Empty(t, rest)
			} else {
				assert.Equal(t, all[k:], rest, "resumed after line %d", k)
			}
		}
	})

	t.Run("a job stopped and resumed from its last line's Next reads every line once", func(t *testing.T) {
		r := newRand(t)
		var b strings.Builder
		for i := range 5000 {
			fmt.Fprintf(&b, "line %d\n", i)
		}
		path := rdWrite(t, []byte(b.String()))
		for range stopRounds {
			var seen []string
			var from pipeline.Position
			for runs := 0; ; runs++ {
				require.Less(t, runs, 5000, "every run should read at least one line")
				p := pipeline.New(context.Background(), pipeline.DefaultBuffer(r.IntN(8)))
				stopAfter := 1 + r.IntN(2000)
				n := 0
				for l := range pipeline.FileLines(p, path, from, 100) {
					seen = append(seen, l.Text)
					from = l.Pos.Next()
					if n++; n == stopAfter {
						p.Stop()
					}
				}
				require.NoError(t, p.Wait())
				if n < stopAfter {
					break // it reached the end
				}
			}
			require.Len(t, seen, 5000)
			for i, s := range seen {
				require.Equal(t, fmt.Sprintf("line %d", i), s)
			}
		}
	})

	t.Run("line numbers go on from the saved position", func(t *testing.T) {
		path := rdWrite(t, []byte("a\nb\nc\nd\n"))
		p := pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.FileLines(p, path, pipeline.Position{Offset: 4, Line: 3}, 10))
		require.NoError(t, err)
		assert.Equal(t, []pipeline.Line{
			{Text: "c", Pos: pipeline.Position{Offset: 4, End: 6, Line: 3, EndLine: 4}},
			{Text: "d", Pos: pipeline.Position{Offset: 6, End: 8, Line: 4, EndLine: 5}},
		}, got)
	})

	t.Run("a missing file fails the pipeline naming the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.txt")
		p := pipeline.New(context.Background())
		_, err := rdCollect(t, p, pipeline.FileLines(p, path, pipeline.Position{}, 10))
		require.ErrorIs(t, err, fs.ErrNotExist)
		assert.Equal(t, path, rdReadError(t, err).Path)
	})

	t.Run("a start past the end of the file is an error, not an empty run", func(t *testing.T) {
		path := rdWrite(t, []byte("a\nb\n"))
		p := pipeline.New(context.Background())
		_, err := rdCollect(t, p, pipeline.FileLines(p, path, pipeline.Position{Offset: 5, Line: 3}, 10))
		re := rdReadError(t, err)
		assert.Equal(t, int64(5), re.Pos.Offset)
		assert.Contains(t, err.Error(), "past the end of the file (4 bytes)")

		p = pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.FileLines(p, path, pipeline.Position{Offset: 4, Line: 3}, 10))
		require.NoError(t, err, "the very end is a valid place to resume")
		assert.Empty(t, got)
	})

	t.Run("an over-long line names the file, the line and the offset", func(t *testing.T) {
		path := rdWrite(t, []byte("ok\nthis one is too long\nok\n"))
		p := pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.FileLines(p, path, pipeline.Position{}, 5, pipeline.Name("log")))
		require.ErrorIs(t, err, pipeline.ErrTooLong)
		assert.Equal(t, []string{"ok"}, rdTexts(got))
		assert.Equal(t, "pipeline: stage log: read "+path+": line 2, byte 3: pipeline: too long: line longer than 5 bytes",
			err.Error())
	})
}

func TestReaderSources_BadArguments(t *testing.T) {
	path := rdWrite(t, []byte("a,b\n"))
	badComma := func(r *csv.Reader) { r.Comma = '\n' }
	cases := []struct {
		name, mention string
		build         func(p *pipeline.Pipeline) bool // reports whether the output was closed at once
	}{
		{"Lines nil reader", "lines#1: reader must not be nil", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.Lines(p, nil, 10))
		}},
		{"Lines maxLen 0", "lines#1: maxLen(0) must be >= 1", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.Lines(p, strings.NewReader("a"), 0))
		}},
		{"Lines bad option", "BufferSize(-1)", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.Lines(p, strings.NewReader("a"), 1, pipeline.BufferSize(-1)))
		}},
		{"Lines option a source cannot honour", "option Timeout", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.Lines(p, strings.NewReader("a"), 1, pipeline.Timeout(time.Second)))
		}},
		{"FileLines empty path", "filelines#1: path must not be empty", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.FileLines(p, "", pipeline.Position{}, 10))
		}},
		{"FileLines negative offset", "filelines#1: from line 0 (bytes -1-0): offset and line must be >= 0", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.FileLines(p, path, pipeline.Position{Offset: -1}, 10))
		}},
		{"FileLines negative line", "offset and line must be >= 0", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.FileLines(p, path, pipeline.Position{Line: -1}, 10))
		}},
		{"FileLines maxLen -1", "filelines#1: maxLen(-1) must be >= 1", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.FileLines(p, path, pipeline.Position{}, -1))
		}},
		{"CSV nil reader", "csv#1: reader must not be nil", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.CSV(p, nil, 10, nil))
		}},
		{"CSV maxLen 0", "csv#1: maxLen(0) must be >= 1", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.CSV(p, strings.NewReader("a"), 0, nil))
		}},
		{"CSV invalid Comma", "csv#1: setup: csv: invalid field or comment delimiter", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.CSV(p, strings.NewReader("a"), 10, badComma))
		}},
		{"CSV Comment equal to Comma", "csv#1: setup:", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.CSV(p, strings.NewReader("a"), 10, func(r *csv.Reader) { r.Comment = ',' }))
		}},
		{"FileCSV empty path", "filecsv#1: path must not be empty", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.FileCSV(p, "", pipeline.Position{}, 10, nil))
		}},
		{"FileCSV negative offset", "filecsv#1: from", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.FileCSV(p, path, pipeline.Position{Offset: -3, Line: 2}, 10, nil))
		}},
		{"FileCSV maxLen 0", "filecsv#1: maxLen(0) must be >= 1", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.FileCSV(p, path, pipeline.Position{}, 0, nil))
		}},
		{"FileCSV invalid Comma", "filecsv#1: setup:", func(p *pipeline.Pipeline) bool {
			return closedNow(pipeline.FileCSV(p, path, pipeline.Position{}, 10, badComma))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			guard(t, func() {
				p := pipeline.New(context.Background())
				assert.True(t, tc.build(p), "the output is closed at once")
				err := p.Wait()
				require.ErrorIs(t, err, pipeline.ErrInvalidArgument)
				assert.Contains(t, err.Error(), tc.mention)
			})
		})
	}

	t.Run("a nil pipeline gets a closed output and no panic", func(t *testing.T) {
		guard(t, func() {
			assert.True(t, closedNow(pipeline.Lines(nil, strings.NewReader("a\n"), 10)))
			assert.True(t, closedNow(pipeline.FileLines(nil, path, pipeline.Position{}, 10)))
			assert.True(t, closedNow(pipeline.CSV(nil, strings.NewReader("a\n"), 10, nil)))
			assert.True(t, closedNow(pipeline.FileCSV(nil, path, pipeline.Position{}, 10, nil)))
			assert.True(t, closedNow(pipeline.Lines(nil, nil, 0)))
		})
	})
}

// ---- CSV ----

// rdRandomCSV writes random records with encoding/csv (fields with commas,
// quotes and newlines; CRLF or LF endings), with blank and "#" comment lines
// between them, and returns the input and the records.
func rdRandomCSV(r *rand.Rand) (string, [][]string) {
	alphabet := []string{"a", "b", " ", ",", "\"", "\n", "é", "x"}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.UseCRLF = r.IntN(2) == 0
	var records [][]string
	for range r.IntN(30) {
		for range r.IntN(3) {
			if r.IntN(2) == 0 {
				b.WriteString("#a comment, \"unbalanced\n")
			} else if w.UseCRLF {
				b.WriteString("\r\n")
			} else {
				b.WriteString("\n")
			}
		}
		rec := make([]string, 1+r.IntN(4))
		for i := range rec {
			var f strings.Builder
			size := r.IntN(8)
			if r.IntN(6) == 0 {
				size = r.IntN(100)
			}
			if len(rec) == 1 || i == 0 {
				size = max(size, 1) // a record of one empty field is a blank line
			}
			for range size {
				f.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			rec[i] = f.String()
		}
		if rec[0][0] == '#' {
			rec[0] = "x" + rec[0]
		}
		_ = w.Write(rec)
		w.Flush()
		records = append(records, rec)
	}
	input := b.String()
	if r.IntN(3) == 0 {
		input = strings.TrimSuffix(strings.TrimSuffix(input, "\n"), "\r") // no final line ending
	}
	return input, records
}

// rdCSVSetup is the configuration of the random CSV inputs.
func rdCSVSetup(r *csv.Reader) {
	r.Comment = '#'
	r.FieldsPerRecord = -1
}

// rdOnlySkipped reports whether s holds only lines encoding/csv skips.
func rdOnlySkipped(s string) bool {
	for _, l := range strings.SplitAfter(s, "\n") {
		if l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r"); l != "" && l[0] != '#' {
			return false
		}
	}
	return true
}

// rdCheckRecords checks that each record's span is its bytes: reparsed
// alone it gives the same fields; spans follow each other with only
// skipped lines between; line numbers are those of the input.
func rdCheckRecords(t *testing.T, input string, want [][]string, got []pipeline.Record) {
	t.Helper()
	require.Len(t, got, len(want))
	prev := int64(0)
	for i, rec := range got {
		pos := rec.Pos
		require.Equal(t, want[i], rec.Fields, "record %d", i)
		require.True(t, pos.Offset >= prev && pos.End > pos.Offset && pos.End <= int64(len(input)), "record %d: %v", i, pos)
		require.True(t, pos.Offset == 0 || input[pos.Offset-1] == '\n', "record %d starts a line", i)
		require.True(t, rdOnlySkipped(input[prev:pos.Offset]), "record %d: only skipped lines before it: %q", i, input[prev:pos.Offset])
		span := csv.NewReader(strings.NewReader(input[pos.Offset:pos.End]))
		rdCSVSetup(span)
		alone, err := span.ReadAll()
		require.NoError(t, err, "record %d", i)
		require.Equal(t, [][]string{want[i]}, alone, "record %d: its span holds it and nothing else", i)
		require.Equal(t, int64(1+strings.Count(input[:pos.Offset], "\n")), pos.Line, "record %d", i)
		require.Equal(t, int64(1+strings.Count(input[:pos.End], "\n")), pos.EndLine, "record %d", i)
		prev = pos.End
	}
	require.True(t, rdOnlySkipped(input[prev:]), "only skipped lines after the last record")
}

func TestCSV(t *testing.T) {
	t.Run("every record's position covers exactly its bytes", func(t *testing.T) {
		r := newRand(t)
		for range propertyCases * 2 {
			input, want := rdRandomCSV(r)
			p := pipeline.New(context.Background())
			got, err := rdCollect(t, p, pipeline.CSV(p, &rdChunky{[]byte(input), r}, 1<<20, rdCSVSetup))
			require.NoError(t, err)
			rdCheckRecords(t, input, want, got)
		}
	})

	t.Run("quoted fields with newlines and CRLF endings keep exact positions", func(t *testing.T) {
		input := "id,text\r\n1,\"two\r\nlines\"\r\n\r\n2,plain\r\n3,\"x\ny\nz\"\n"
		p := pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.CSV(p, strings.NewReader(input), 100, nil))
		require.NoError(t, err)
		second := strings.Index(input, "1,")
		third := strings.Index(input, "2,")
		fourth := strings.Index(input, "3,")
		assert.Equal(t, []pipeline.Record{
			{Fields: []string{"id", "text"}, Pos: pipeline.Position{Offset: 0, End: 9, Line: 1, EndLine: 2}},
			{Fields: []string{"1", "two\nlines"}, Pos: pipeline.Position{Offset: int64(second), End: int64(third - 2), Line: 2, EndLine: 4}},
			{Fields: []string{"2", "plain"}, Pos: pipeline.Position{Offset: int64(third), End: int64(fourth), Line: 5, EndLine: 6}},
			{Fields: []string{"3", "x\ny\nz"}, Pos: pipeline.Position{Offset: int64(fourth), End: int64(len(input)), Line: 6, EndLine: 9}},
		}, got)
	})

	t.Run("a record longer than maxLen fails at that record, after every record before it", func(t *testing.T) {
		r := newRand(t)
		for range propertyCases * 3 {
			input, want := rdRandomCSV(r)
			p := pipeline.New(context.Background())
			all, err := rdCollect(t, p, pipeline.CSV(p, strings.NewReader(input), 1<<20, rdCSVSetup))
			require.NoError(t, err)

			maxLen := 1 + r.IntN(60)
			first, prev := len(all), int64(0) // the first record too long, if any
			for i, rec := range all {
				if rec.Pos.End-prev > int64(maxLen) {
					first = i
					break
				}
				prev = rec.Pos.End
			}
			tooLong := first < len(all) || int64(len(input))-prev > int64(maxLen)

			p = pipeline.New(context.Background())
			got, err := rdCollect(t, p, pipeline.CSV(p, &rdChunky{[]byte(input), r}, maxLen, rdCSVSetup))
			require.Len(t, got, first, "every record before the long one is emitted")
			if first > 0 {
				require.Equal(t, all[:first], got)
			}
			if !tooLong {
				require.NoError(t, err)
				rdCheckRecords(t, input, want, got)
				continue
			}
			require.ErrorIs(t, err, pipeline.ErrTooLong)
			re := rdReadError(t, err)
			assert.Equal(t, prev, re.Pos.Offset, "the error names the end of the last record read")
			assert.Equal(t, int64(1+strings.Count(input[:prev], "\n")), re.Pos.Line)
		}
	})

	t.Run("an unclosed quote is an error of bounded size, not the rest of the input", func(t *testing.T) {
		input := "a,b\nc,\"never closed\n" + strings.Repeat("x,y\n", 10_000)
		p := pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.CSV(p, strings.NewReader(input), 1000, nil))
		require.ErrorIs(t, err, pipeline.ErrTooLong)
		assert.Len(t, got, 1)
		re := rdReadError(t, err)
		assert.Equal(t, pipeline.Position{Offset: 4, End: 4 + 1000, Line: 2, EndLine: 2}, re.Pos)
		assert.Contains(t, err.Error(), "line 2, byte 4: pipeline: too long: record longer than 1000 bytes")
	})

	t.Run("a parse error names the record's line and offset", func(t *testing.T) {
		input := "a,b\nc,d\n\n# note\ne,\"f\"x\ng,h\n"
		p := pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.CSV(p, strings.NewReader(input), 100, func(r *csv.Reader) { r.Comment = '#' }))
		require.ErrorIs(t, err, csv.ErrQuote)
		assert.Len(t, got, 2)
		re := rdReadError(t, err)
		assert.Equal(t, int64(strings.Index(input, "e,")), re.Pos.Offset)
		assert.Equal(t, int64(5), re.Pos.Line)
		var pe *csv.ParseError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, 5, pe.StartLine)
		assert.Equal(t, 5, pe.Line)
		assert.Contains(t, err.Error(), "read line 5, byte 16: parse error on line 5, column 5")
	})

	t.Run("a wrong field count is an error at that record", func(t *testing.T) {
		p := pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.CSV(p, strings.NewReader("a,b\nc\n"), 100, nil))
		require.ErrorIs(t, err, csv.ErrFieldCount)
		assert.Len(t, got, 1)
		assert.Equal(t, pipeline.Position{Offset: 4, End: 6, Line: 2, EndLine: 2}, rdReadError(t, err).Pos)
	})

	t.Run("setup configures the reader, and records are never reused", func(t *testing.T) {
		p := pipeline.New(context.Background())
		got, err := rdCollect(t, p, pipeline.CSV(p, strings.NewReader("a;b\n# skip\nc;d\n"), 100, func(r *csv.Reader) {
			r.Comma, r.Comment = ';', '#'
			r.ReuseRecord = true
		}))
		require.NoError(t, err)
		require.Len(t, got, 2)
		assert.Equal(t, []string{"a", "b"}, got[0].Fields)
		assert.Equal(t, []string{"c", "d"}, got[1].Fields)
		assert.Equal(t, int64(3), got[1].Pos.Line)
	})

	t.Run("Stop ends it cleanly and every record emitted arrives", func(t *testing.T) {
		r := newRand(t)
		for range stopRounds {
			p := pipeline.New(context.Background(), pipeline.DefaultBuffer(r.IntN(8)))
			out := pipeline.CSV(p, &rdEndless{}, 100, nil)
			stopAfter := 1 + r.IntN(500)
			n := 0
			for rec := range out {
				require.Equal(t, []string{strconv.Itoa(n)}, rec.Fields, "no record lost or repeated")
				if n++; n == stopAfter {
					p.Stop()
				}
			}
			require.NoError(t, p.Wait())
			assert.Equal(t, uint64(n), p.Stats()[0].Out)
		}
	})

	t.Run("cancel ends it promptly while its output is full", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p := pipeline.New(ctx)
		out := pipeline.CSV(p, &rdEndless{}, 100, nil)
		require.Eventually(t, func() bool { return p.Stats()[0].Out == pipeline.DefaultBufferSize },
			rdBound, time.Millisecond)
		cancel()
		_, err := rdCollect(t, p, out)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestFileCSV(t *testing.T) {
	t.Run("resuming from a saved Next yields exactly the remaining records", func(t *testing.T) {
		r := newRand(t)
		for range propertyCases {
			input, want := rdRandomCSV(r)
			path := rdWrite(t, []byte(input))
			p := pipeline.New(context.Background())
			all, err := rdCollect(t, p, pipeline.FileCSV(p, path, pipeline.Position{}, 1<<20, rdCSVSetup))
			require.NoError(t, err)
			rdCheckRecords(t, input, want, all)

			k := r.IntN(len(all) + 1)
			var from pipeline.Position
			if k > 0 {
				from = all[k-1].Pos.Next()
			}
			p = pipeline.New(context.Background())
			rest, err := rdCollect(t, p, pipeline.FileCSV(p, path, from, 1<<20, rdCSVSetup))
			require.NoError(t, err)
			if k == len(all) {
				assert.Empty(t, rest)
			} else {
				assert.Equal(t, all[k:], rest, "resumed after record %d", k)
			}
		}
	})

	t.Run("a parse error after resuming names the line of the whole file", func(t *testing.T) {
		input := "a,b\nc,d\n\n# note\ne,\"f\"x\ng,h\n"
		path := rdWrite(t, []byte(input))
		p := pipeline.New(context.Background())
		_, err := rdCollect(t, p, pipeline.FileCSV(p, path, pipeline.Position{Offset: 8, Line: 3}, 100,
			func(r *csv.Reader) { r.Comment = '#' }))
		require.ErrorIs(t, err, csv.ErrQuote)
		re := rdReadError(t, err)
		assert.Equal(t, path, re.Path)
		assert.Equal(t, int64(16), re.Pos.Offset)
		assert.Equal(t, int64(5), re.Pos.Line)
		var pe *csv.ParseError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, 5, pe.StartLine)
	})

	t.Run("a missing file fails the pipeline naming the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.csv")
		p := pipeline.New(context.Background())
		_, err := rdCollect(t, p, pipeline.FileCSV(p, path, pipeline.Position{}, 10, nil))
		require.ErrorIs(t, err, fs.ErrNotExist)
		assert.Equal(t, path, rdReadError(t, err).Path)
	})
}

// TestFileLines_StoppedBeforeItSeeksIsACleanEnd: Stop cancels the source's
// context, which closes the file, possibly before the source has seeked to
// its saved position; that is a clean end, not a read error.
func TestFileLines_StoppedBeforeItSeeksIsACleanEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.txt")
	require.NoError(t, os.WriteFile(path, []byte("a\nb\nc\n"), 0o644))
	for range 200 {
		p := pipeline.New(context.Background())
		p.Stop()
		lines := pipeline.FileLines(p, path, pipeline.Position{Offset: 2, Line: 2}, 80)
		require.NoError(t, pipeline.Drain(p, lines))
	}
}

package pipeline

// This file holds the observer interfaces an adapter (OpenTelemetry,
// Prometheus, a log) implements to hear of a pipeline's stages and, sampled,
// its calls, and what they are told. WithObserver, which attaches one, and
// the code that tells it are in observe.go.

import "time"

// StageInfo says which stage an [Observer] hears of: its name and kind as
// in [StageStats], its 1-based index in creation order, and its workers.
type StageInfo struct {
	Name, Kind     string
	Index, Workers int
}

// Observer hears of a pipeline's life: each stage starting (its first
// goroutine about to run) and ending (its last goroutine returned, with its
// final counters), and the pipeline ending (with its result and every
// stage's final counters, before [Pipeline.Wait] returns). Its methods are
// called from the pipeline's goroutines, possibly at once: they must be safe
// for concurrent use, quick, and must not block. Attach one with
// [WithObserver]; it may also be a [CallObserver].
type Observer interface {
	StageStarted(s StageInfo)
	StageEnded(s StageInfo, final StageStats)
	PipelineEnded(result error, final []StageStats)
}

// CallObserver is an [Observer] that also hears of calls of the stages'
// user functions ([FanOut], [FlatMap], [FanOutOrdered], [ForEach]), after
// each returns: one call in CallEvery per worker, the first included (1:
// every call; 0 or less: none). Call runs on the worker's goroutine, between
// the call and the sending of its result: it must be quick.
type CallObserver interface {
	Observer
	CallEvery() int
	Call(c CallInfo)
}

// CallInfo describes one call a [CallObserver] hears of: the stage, the
// item the function was called with, when the call started, how long it took
// (every attempt, retries and their backoff included) and the error it
// returned (nil on success).
type CallInfo struct {
	Stage    StageInfo
	Item     any
	Start    time.Time
	Duration time.Duration
	Err      error
}

// observers is what a pipeline was given with WithObserver.
type observers struct {
	list  []Observer
	calls []CallObserver
	every []uint32 // calls[i] hears one call in every[i]
}

// infoOf returns the StageInfo of s.
func infoOf(s *stage) StageInfo {
	return StageInfo{Name: s.name, Kind: s.kind, Index: s.index, Workers: s.workers}
}

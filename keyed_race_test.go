//go:build race

package pipeline_test

// kdRaceDetector reports whether the race detector is on: it makes every
// item of a stream cost some fifteen times more.
const kdRaceDetector = true

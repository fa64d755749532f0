// Package live serves a live view of running pipelines to a browser: an
// [http.Handler] whose page draws each pipeline's graph (stages as nodes
// with their name, kind and workers; the channels between them as edges
// showing how full they are) and updates it a few times a second over
// Server-Sent Events, with each stage's rate, counts (in, out, dropped,
// errors, retries), busy workers, call latency (p50, p99), the bottleneck
// (see [pipeline.StageStats].Bottleneck) and a chart of its rate over the
// last minute. A pipeline that has ended shows its final counts and its
// result. Everything the page needs (HTML, JavaScript, CSS) is embedded in
// the binary: the page fetches nothing from the network and works offline.
//
//	h := live.New(live.Watch("etl", p))
//	go http.ListenAndServe("127.0.0.1:8080", h) // open http://127.0.0.1:8080/
//
// The handler serves, relative to where it is mounted (mount it on a path
// ending in a slash, with [http.StripPrefix]):
//
//	GET  /                          the page
//	GET  /api/state[?pipeline=N]    the state, as JSON ([State])
//	GET  /api/events[?pipeline=N]   the same state as Server-Sent Events ("state"), every Interval
//	POST /api/pipelines/N/stop      Stop pipeline N (drain): only with AllowStop
//	POST /api/limiters/N/limit      set limiter N's limit (form or query value "limit"): only for a ControlLimiter
//
// # Controls
//
// The page only watches unless controls are turned on when the handler is
// made: [AllowStop] lets it stop a pipeline (a drain, [pipeline.Pipeline.Stop]),
// [ControlLimiter] lets it set the limit of the [pipeline.Limiter] given. A
// control that is off answers 403 Forbidden, as does a control request
// from a page of another origin. A page that can stop a job must never be
// exposed by accident: bind the server to 127.0.0.1 (as the examples do),
// never to all interfaces, and put authentication in front of the handler
// before serving it beyond the machine. The handler itself has none.
package live

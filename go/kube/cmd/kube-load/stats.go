package main

import (
	"context"
	"net/url"
	"sync"
	"time"

	"k8s.io/client-go/tools/metrics"
)

// stats is what one report covers. The program keeps two: the whole run and the window since the
// last report, so a benchmark can cut windows (a maximum cannot be taken apart after the fact).
type stats struct {
	Since          time.Time                   `json:"since"`
	Requests       map[string]map[string]int64 `json:"requests"`     // verb -> HTTP code ("<error>" when none) -> attempts
	Retries        map[string]map[string]int64 `json:"retries"`      // verb -> code that made client-go retry -> retries
	MaxLatencyMs   map[string]float64          `json:"maxLatencyMs"` // verb -> longest request, client-go's retries included
	Operations     map[string]*opStats         `json:"operations"`   // the load's own calls: create-configmap, ...
	Leases         map[string]*leaseStats      `json:"leases"`       // lease name -> what its candidates saw
	Informers      map[string]*informerStats   `json:"informers"`    // resource -> list/watch calls
	Readyz         readyzStats                 `json:"readyz"`
	leaseHolders   map[string]string           // lease -> last leader seen (for hand-overs)
	readyzOpenFrom *time.Time                  // start of the failure window still open
}

type opStats struct {
	OK           int64            `json:"ok"`
	Failed       int64            `json:"failed"`
	FailedBy     map[string]int64 `json:"failedBy,omitempty"` // reason (Conflict, InternalError, Timeout, ...) -> count
	MaxLatencyMs float64          `json:"maxLatencyMs"`
}

type leaseEvent struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"` // "lost" or "handover"
	Identity string    `json:"identity"`
}

type leaseStats struct {
	Acquired  int64        `json:"acquired"`  // OnStartedLeading
	Lost      int64        `json:"lost"`      // OnStoppedLeading while the program was not stopping
	Handovers int64        `json:"handovers"` // OnNewLeader naming another identity than the last one seen
	Events    []leaseEvent `json:"events,omitempty"`
}

type informerStats struct {
	Lists       int64 `json:"lists"`       // LIST calls, plus watches that ask for the initial list (WatchList)
	Watches     int64 `json:"watches"`     // WATCH calls (the first one included)
	Restarts    int64 `json:"restarts"`    // watches after the first
	Relists     int64 `json:"relists"`     // lists after the first
	WatchErrors int64 `json:"watchErrors"` // watch calls that failed to start
	Events      int64 `json:"events"`      // add/update/delete notifications delivered
}

type readyzFailure struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to,omitempty"`
	DurationMs float64   `json:"durationMs"`
	Status     string    `json:"status"` // HTTP code or the error
	Failed     []string  `json:"failed"` // the "[-]..." lines of /readyz?verbose
}

type readyzStats struct {
	Polls         int64           `json:"polls"`
	Failures      int64           `json:"failures"` // failed polls
	LongestFailMs float64         `json:"longestFailureMs"`
	Windows       []readyzFailure `json:"windows,omitempty"` // consecutive failed polls, at most maxWindows kept
}

const maxEvents = 200

func newStats(now time.Time) *stats {
	return &stats{
		Since:        now,
		Requests:     map[string]map[string]int64{},
		Retries:      map[string]map[string]int64{},
		MaxLatencyMs: map[string]float64{},
		Operations:   map[string]*opStats{},
		Leases:       map[string]*leaseStats{},
		Informers:    map[string]*informerStats{},
		leaseHolders: map[string]string{},
	}
}

// recorder applies every observation to the run's stats and to the current window's.
type recorder struct {
	mu     sync.Mutex
	total  *stats
	window *stats
}

func newRecorder() *recorder {
	now := time.Now()
	return &recorder{total: newStats(now), window: newStats(now)}
}

func (r *recorder) each(f func(s *stats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r.total)
	f(r.window)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func inc(m map[string]map[string]int64, a, b string) {
	if m[a] == nil {
		m[a] = map[string]int64{}
	}
	m[a][b]++
}

func (r *recorder) op(name string, d time.Duration, reason string) {
	r.each(func(s *stats) {
		o := s.Operations[name]
		if o == nil {
			o = &opStats{}
			s.Operations[name] = o
		}
		if reason == "" {
			o.OK++
		} else {
			o.Failed++
			if o.FailedBy == nil {
				o.FailedBy = map[string]int64{}
			}
			o.FailedBy[reason]++
		}
		o.MaxLatencyMs = max(o.MaxLatencyMs, ms(d))
	})
}

func (s *stats) lease(name string) *leaseStats {
	l := s.Leases[name]
	if l == nil {
		l = &leaseStats{}
		s.Leases[name] = l
	}
	return l
}

func (l *leaseStats) event(e leaseEvent) {
	if len(l.Events) < maxEvents {
		l.Events = append(l.Events, e)
	}
}

func (s *stats) informer(resource string) *informerStats {
	i := s.Informers[resource]
	if i == nil {
		i = &informerStats{}
		s.Informers[resource] = i
	}
	return i
}

// informerList counts one listing; the first of the run is not a re-list (the window's stats
// know that only from the run's).
func (r *recorder) informerList(resource string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.total.informer(resource).Lists == 0
	for _, s := range []*stats{r.total, r.window} {
		i := s.informer(resource)
		i.Lists++
		if !first {
			i.Relists++
		}
	}
}

// readyz records one poll: ok, or the status and the failed checks.
func (r *recorder) readyz(at time.Time, ok bool, status string, failed []string) {
	r.each(func(s *stats) {
		s.Readyz.Polls++
		if ok {
			if s.readyzOpenFrom != nil {
				s.readyzOpenFrom = nil
				if n := len(s.Readyz.Windows); n > 0 && s.Readyz.Windows[n-1].To.IsZero() {
					w := &s.Readyz.Windows[n-1]
					w.To = at
					w.DurationMs = ms(at.Sub(w.From))
					s.Readyz.LongestFailMs = max(s.Readyz.LongestFailMs, w.DurationMs)
				}
			}
			return
		}
		s.Readyz.Failures++
		if s.readyzOpenFrom == nil {
			from := at
			s.readyzOpenFrom = &from
			if len(s.Readyz.Windows) < maxEvents {
				s.Readyz.Windows = append(s.Readyz.Windows, readyzFailure{From: at, Status: status, Failed: failed})
			}
		}
		s.Readyz.LongestFailMs = max(s.Readyz.LongestFailMs, ms(at.Sub(*s.readyzOpenFrom)))
	})
}

// metricsAdapter feeds client-go's own request metrics (every attempt's result, every retry,
// each request's latency with its retries) into the recorder.
type metricsAdapter struct{ r *recorder }

func (m metricsAdapter) Increment(_ context.Context, code, method, _ string) {
	m.r.each(func(s *stats) { inc(s.Requests, method, code) })
}

func (m metricsAdapter) IncrementRetry(_ context.Context, code, method, _ string) {
	m.r.each(func(s *stats) { inc(s.Retries, method, code) })
}

func (m metricsAdapter) Observe(_ context.Context, verb string, _ url.URL, latency time.Duration) {
	m.r.each(func(s *stats) { s.MaxLatencyMs[verb] = max(s.MaxLatencyMs[verb], ms(latency)) })
}

func registerMetrics(r *recorder) {
	a := metricsAdapter{r}
	metrics.Register(metrics.RegisterOpts{RequestResult: a, RequestRetry: a, RequestLatency: a})
}

// holders is filled in at report time from the candidates themselves.
type report struct {
	Reason    string            `json:"reason"` // "report" (asked on stdin), "signal", "end"
	At        time.Time         `json:"at"`
	Seq       int               `json:"seq"`
	Config    map[string]string `json:"config"`
	Holders   map[string]string `json:"holders"` // lease -> identity of this program's candidate that leads now ("" if none)
	Objects   map[string]int    `json:"objects"` // informer cache sizes
	Total     *stats            `json:"total"`
	Window    *stats            `json:"window"`
	Attempts  int64             `json:"attempts"`  // all HTTP attempts in the run
	RetriesN  int64             `json:"retries"`   // client-go retries in the run
	NonRetryF int64             `json:"failedOps"` // the load's own calls that failed in the run (after client-go's retries)
}

// snapshot closes the window: the report carries the run and the window, and a new window starts.
func (r *recorder) snapshot(rep *report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	rep.Total, rep.Window = r.total, r.window
	next := newStats(now)
	next.leaseHolders = r.window.leaseHolders
	if r.window.readyzOpenFrom != nil {
		from := now
		next.readyzOpenFrom = &from
	}
	// The run's stats keep being written after the report is encoded: hand out a copy.
	rep.Total = r.total.clone()
	r.window = next
	for _, codes := range r.total.Requests {
		for _, n := range codes {
			rep.Attempts += n
		}
	}
	for _, codes := range r.total.Retries {
		for _, n := range codes {
			rep.RetriesN += n
		}
	}
	for _, o := range r.total.Operations {
		rep.NonRetryF += o.Failed
	}
}

func (s *stats) clone() *stats {
	c := newStats(s.Since)
	for k, v := range s.Requests {
		c.Requests[k] = cloneCounts(v)
	}
	for k, v := range s.Retries {
		c.Retries[k] = cloneCounts(v)
	}
	for k, v := range s.MaxLatencyMs {
		c.MaxLatencyMs[k] = v
	}
	for k, v := range s.Operations {
		o := *v
		o.FailedBy = cloneCounts(v.FailedBy)
		c.Operations[k] = &o
	}
	for k, v := range s.Leases {
		l := *v
		l.Events = append([]leaseEvent(nil), v.Events...)
		c.Leases[k] = &l
	}
	for k, v := range s.Informers {
		i := *v
		c.Informers[k] = &i
	}
	c.Readyz = s.Readyz
	c.Readyz.Windows = append([]readyzFailure(nil), s.Readyz.Windows...)
	return c
}

func cloneCounts(m map[string]int64) map[string]int64 {
	if m == nil {
		return nil
	}
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

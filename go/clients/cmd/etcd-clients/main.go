// etcd-clients runs the clients a Kubernetes control plane runs against etcd, with the real
// go.etcd.io/etcd/client/v3, for `make bench`: every client is its own clientv3.Client with all
// the endpoints, as kube-apiserver configures one (keep-alive 30 s / 10 s, dial timeout 20 s).
//
// Kinds, each started -per-kind times in two modes: "default" (clientv3 as it connects by itself)
// and "health" (gRPC health checking, the service config of etcd's tests/e2e/failover_test.go):
//
//	session-5s, session-15s  concurrency.Session + Election.Campaign; a lost session starts a new one
//	keepalive                Lease.Grant(5 s) + Lease.KeepAlive; a lost lease is granted again
//	watch                    a watch on the txn writers' prefix with WithProgressNotify
//	txn                      compare-and-swap on mod revision (kube-apiserver's GuaranteedUpdate)
//	list                     paginated range reads (WithLimit, continue from the last key, WithRev)
//
// It counts until asked: each line "report LABEL" on stdin prints one JSON line on stdout with
// what happened since the previous report (see report) and starts counting anew; EOF ends it.
// A chained gRPC interceptor sits inside clientv3's retry interceptor, so it sees every attempt:
// a request object seen again is clientv3 retrying by itself.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/health" // registers the client-side health checker that healthCheckConfig needs
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// healthServiceConfig is the service config etcd's own failover test (tests/e2e/failover_test.go) uses.
const healthServiceConfig = `{"loadBalancingPolicy": "round_robin", "healthCheckConfig": {"serviceName": ""}}`

const maxEvents = 500

var modes = []string{"default", "health"}

// Stats are one kind's figures in one mode since the last report.
type Stats struct {
	Kind    string `json:"kind"`
	Mode    string `json:"mode"`
	Clients int    `json:"clients"`
	// Unary RPCs as the caller made them / extra attempts clientv3's retry interceptor made.
	Calls   int64 `json:"calls"`
	Retries int64 `json:"retries"`
	// Attempts that failed, by gRPC code (retried ones included).
	AttemptErrors map[string]int64 `json:"attemptErrors"`
	// What the client's own code got back as an error after clientv3's retries, by gRPC code.
	Failed map[string]int64 `json:"failed"`
	// Streams (Watch, LeaseKeepAlive) opened: clientv3 opens a new one when one breaks.
	Streams       int64   `json:"streams"`
	SessionsLost  int64   `json:"sessionsLost"`
	LeasesLost    int64   `json:"leasesLost"`
	ElectionsLost int64   `json:"electionsLost"`
	WatchBroken   int64   `json:"watchInterruptions"`
	WatchCompact  int64   `json:"watchCompactedRestarts"`
	MaxLatencyMs  float64 `json:"maxLatencyMs"`
	// What MaxLatencyMs measures for this kind.
	LatencyOf string `json:"latencyOf"`
	// At the report: how many of the kind's clients have their stream (LeaseKeepAlive, else Watch)
	// on each member, by address: the member whose defrag they would feel.
	StreamPeers map[string]int64 `json:"streamPeers"`
}

// Event is one thing lost or failed, with the member the client was talking to for it.
type Event struct {
	UnixMs int64  `json:"unixMs"`
	Client string `json:"client"`
	Kind   string `json:"kind"`
	Mode   string `json:"mode"`
	What   string `json:"what"`
	Code   string `json:"code,omitempty"`
	Peer   string `json:"peer"`
	Detail string `json:"detail,omitempty"`
}

type recorder struct {
	clients []*client // set before the first report, read-only after
	mu      sync.Mutex
	start   time.Time
	stats   map[string]*Stats
	events  []Event
	dropped int
}

func (r *recorder) with(kind, mode string, f func(s *Stats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := kind + "/" + mode
	s := r.stats[k]
	if s == nil {
		s = &Stats{Kind: kind, Mode: mode, AttemptErrors: map[string]int64{}, Failed: map[string]int64{}}
		r.stats[k] = s
	}
	f(s)
}

func (r *recorder) event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) >= maxEvents {
		r.dropped++
		return
	}
	e.UnixMs = time.Now().UnixMilli()
	r.events = append(r.events, e)
}

// report returns the figures since the last report as one JSON line and starts counting anew
// (client counts and what each latency measures carry over).
func (r *recorder) report(label string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	out := struct {
		Label         string   `json:"label"`
		StartUnixMs   int64    `json:"startUnixMs"`
		EndUnixMs     int64    `json:"endUnixMs"`
		Kinds         []*Stats `json:"kinds"`
		Events        []Event  `json:"events"`
		EventsDropped int      `json:"eventsDropped"`
	}{label, r.start.UnixMilli(), now.UnixMilli(), []*Stats{}, r.events, r.dropped}
	peers := map[string]map[string]int64{}
	for _, c := range r.clients {
		p := c.peer(mLeaseKeepAlive)
		if p == "" {
			p = c.peer(mWatch)
		}
		if p != "" {
			k := c.kind + "/" + c.mode
			if peers[k] == nil {
				peers[k] = map[string]int64{}
			}
			peers[k][p]++
		}
	}
	for _, kind := range kinds {
		for _, mode := range modes {
			if s := r.stats[kind.name+"/"+mode]; s != nil {
				s.StreamPeers = peers[kind.name+"/"+mode]
				out.Kinds = append(out.Kinds, s)
				r.stats[kind.name+"/"+mode] = &Stats{Kind: s.Kind, Mode: s.Mode, Clients: s.Clients, LatencyOf: s.LatencyOf,
					AttemptErrors: map[string]int64{}, Failed: map[string]int64{}}
			}
		}
	}
	if out.Events == nil {
		out.Events = []Event{}
	}
	r.events, r.dropped, r.start = nil, 0, now
	b, _ := json.Marshal(out)
	return b
}

func codeOf(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "DeadlineExceeded"
	}
	if errors.Is(err, context.Canceled) {
		return "Canceled"
	}
	// clientv3 hands etcd's own errors back as rpctypes.EtcdError, which carries the gRPC code.
	var etcdErr rpctypes.EtcdError
	if errors.As(err, &etcdErr) {
		return etcdErr.Code().String()
	}
	return status.Code(err).String()
}

// client is one clientv3.Client of one kind and mode, with the member it last talked to.
type client struct {
	*clientv3.Client
	name, kind, mode string
	rec              *recorder
	mu               sync.Mutex
	peers            map[string]string // method → address of the member of its last call or stream
	seen             map[any]time.Time // request objects already sent: the same one again is a retry
}

func (c *client) peer(method string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers[method]
}

func (c *client) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.mu.Lock()
	_, retry := c.seen[req]
	c.seen[req] = time.Now()
	if len(c.seen) > 10_000 {
		for k, t := range c.seen {
			if time.Since(t) > time.Minute {
				delete(c.seen, k)
			}
		}
	}
	c.mu.Unlock()
	var p peer.Peer
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Peer(&p))...)
	if p.Addr != nil {
		c.mu.Lock()
		c.peers[method] = p.Addr.String()
		c.mu.Unlock()
	}
	c.rec.with(c.kind, c.mode, func(s *Stats) {
		if retry {
			s.Retries++
		} else {
			s.Calls++
		}
		if err != nil {
			s.AttemptErrors[codeOf(err)]++
		}
	})
	return err
}

func (c *client) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	c.rec.with(c.kind, c.mode, func(s *Stats) {
		s.Streams++
		if err != nil {
			s.AttemptErrors[codeOf(err)]++
		}
	})
	if err == nil {
		if p, ok := peer.FromContext(cs.Context()); ok && p.Addr != nil {
			c.mu.Lock()
			c.peers[method] = p.Addr.String()
			c.mu.Unlock()
		}
	}
	return cs, err
}

// failed counts an error the client's own code got back and notes it as an event.
func (c *client) failed(what, method string, err error) {
	code := codeOf(err)
	c.rec.with(c.kind, c.mode, func(s *Stats) { s.Failed[code]++ })
	c.rec.event(Event{Client: c.name, Kind: c.kind, Mode: c.mode, What: what, Code: code, Peer: c.peer(method), Detail: trim(err.Error())})
}

func (c *client) lost(what, method, detail string, count func(s *Stats)) {
	c.rec.with(c.kind, c.mode, count)
	c.rec.event(Event{Client: c.name, Kind: c.kind, Mode: c.mode, What: what, Peer: c.peer(method), Detail: detail})
}

func (c *client) latency(d time.Duration) {
	ms := float64(d.Microseconds()) / 1000
	c.rec.with(c.kind, c.mode, func(s *Stats) { s.MaxLatencyMs = max(s.MaxLatencyMs, ms) })
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

type options struct {
	endpoints []string
	prefix    string
	timeout   time.Duration
	txnEvery  time.Duration
	listEvery time.Duration
}

type kind struct {
	name, latencyOf string
	run             func(ctx context.Context, c *client, i int, o options)
}

var kinds = []kind{
	{"session-5s", "Campaign, from a new session to leading", func(ctx context.Context, c *client, i int, o options) { runSession(ctx, c, i, o, 5) }},
	{"session-15s", "Campaign, from a new session to leading", func(ctx context.Context, c *client, i int, o options) { runSession(ctx, c, i, o, 15) }},
	{"keepalive", "gap between two keep-alive answers (1.7 s, a third of the TTL, when nothing stalls)", runKeepAlive},
	{"watch", "gap between two watch responses (writes every 100 ms)", runWatch},
	{"txn", "compare-and-swap Txn", runTxn},
	{"list", "paginated list, all pages", runList},
}

const (
	mLeaseKeepAlive = "/etcdserverpb.Lease/LeaseKeepAlive"
	mWatch          = "/etcdserverpb.Watch/Watch"
	mTxn            = "/etcdserverpb.KV/Txn"
	mRange          = "/etcdserverpb.KV/Range"
	mLeaseGrant     = "/etcdserverpb.Lease/LeaseGrant"
)

// runSession holds a session and leads an election of its own; when the session ends (clientv3
// stops keeping its lease alive: the lease expired or was not found), leadership is lost with it.
func runSession(ctx context.Context, c *client, i int, o options, ttl int) {
	for ctx.Err() == nil {
		began := time.Now()
		s, err := concurrency.NewSession(c.Client, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
		if err != nil {
			c.failed("new session", mLeaseGrant, err)
			sleep(ctx, time.Second)
			continue
		}
		e := concurrency.NewElection(s, fmt.Sprintf("%s/election/%s/%d/%d", o.prefix, c.mode, ttl, i))
		cctx, cancel := context.WithTimeout(ctx, 4*o.timeout)
		err = e.Campaign(cctx, c.name)
		cancel()
		if err != nil {
			c.failed("campaign", mTxn, err)
			s.Orphan()
			sleep(ctx, time.Second)
			continue
		}
		c.latency(time.Since(began))
		select {
		case <-ctx.Done():
			return
		case <-s.Done():
		}
		// Did the lease expire on the server too, or did only the client give up on it?
		detail := "lease gone on the server"
		tctx, cancel := context.WithTimeout(ctx, o.timeout)
		if ttlResp, err := c.TimeToLive(tctx, s.Lease()); err != nil {
			detail = "lease state unknown: " + codeOf(err)
		} else if ttlResp.TTL > 0 {
			detail = fmt.Sprintf("lease still alive on the server (TTL %d s)", ttlResp.TTL)
		}
		cancel()
		c.lost("session lost (and its election)", mLeaseKeepAlive, detail, func(s *Stats) { s.SessionsLost++; s.ElectionsLost++ })
	}
}

func runKeepAlive(ctx context.Context, c *client, _ int, o options) {
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, o.timeout)
		lease, err := c.Grant(gctx, 5)
		cancel()
		if err != nil {
			c.failed("grant", mLeaseGrant, err)
			sleep(ctx, time.Second)
			continue
		}
		ch, err := c.KeepAlive(ctx, lease.ID)
		if err != nil {
			c.failed("keep-alive", mLeaseKeepAlive, err)
			continue
		}
		last := time.Now()
		for range ch {
			c.latency(time.Since(last))
			last = time.Now()
		}
		if ctx.Err() == nil {
			c.latency(time.Since(last)) // the gap that ended in the loss is the longest of all
			c.lost("lease lost", mLeaseKeepAlive, fmt.Sprintf("no keep-alive answer for %s", time.Since(last).Round(time.Millisecond)),
				func(s *Stats) { s.LeasesLost++ })
		}
	}
}

// runWatch watches the txn writers' keys as kube-apiserver's watch cache does: from the last
// revision seen; on a compacted revision it starts again from the current one (a re-list).
func runWatch(ctx context.Context, c *client, _ int, o options) {
	var next int64
	for ctx.Err() == nil {
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithProgressNotify(), clientv3.WithPrevKV()}
		if next > 0 {
			opts = append(opts, clientv3.WithRev(next))
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		last := time.Now()
		for resp := range c.Watch(wctx, o.prefix+"/txn/", opts...) {
			c.latency(time.Since(last))
			last = time.Now()
			if resp.CompactRevision != 0 {
				c.lost("watch compacted", mWatch, fmt.Sprintf("compacted at %d", resp.CompactRevision), func(s *Stats) { s.WatchCompact++ })
				next = 0
				break
			}
			if err := resp.Err(); err != nil || resp.Canceled {
				c.lost("watch interrupted", mWatch, fmt.Sprint(err), func(s *Stats) { s.WatchBroken++ })
				break
			}
			if resp.Header.Revision > 0 {
				next = resp.Header.Revision + 1
			}
		}
		cancel()
		if ctx.Err() == nil {
			sleep(ctx, 100*time.Millisecond)
		}
	}
}

// runTxn updates its own key as kube-apiserver's GuaranteedUpdate does:
// Txn(If(ModRevision(k) == rev)).Then(Put).Else(Get), taking the current revision from Else.
func runTxn(ctx context.Context, c *client, i int, o options) {
	key := fmt.Sprintf("%s/txn/%s/%d", o.prefix, c.mode, i)
	var rev int64
	for n := 0; ctx.Err() == nil; n++ {
		sleep(ctx, o.txnEvery)
		tctx, cancel := context.WithTimeout(ctx, o.timeout)
		began := time.Now()
		resp, err := c.Txn(tctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, fmt.Sprintf("%s %d", c.name, n))).
			Else(clientv3.OpGet(key)).
			Commit()
		cancel()
		if err != nil {
			c.failed("txn", mTxn, err)
			continue
		}
		c.latency(time.Since(began))
		if resp.Succeeded {
			rev = resp.Header.Revision
		} else if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			rev = kvs[0].ModRevision
		}
	}
}

// runList lists the list prefix as kube-apiserver pages through a LIST: WithLimit, the next page
// from the last key, every page at the first page's revision.
func runList(ctx context.Context, c *client, _ int, o options) {
	prefix := o.prefix + "/list/"
	end := clientv3.GetPrefixRangeEnd(prefix)
	for ctx.Err() == nil {
		sleep(ctx, o.listEvery)
		began := time.Now()
		key, rev := prefix, int64(0)
		var err error
		for ctx.Err() == nil {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(50)}
			if rev > 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			tctx, cancel := context.WithTimeout(ctx, o.timeout)
			var resp *clientv3.GetResponse
			resp, err = c.Get(tctx, key, opts...)
			cancel()
			if err != nil {
				break
			}
			rev = resp.Header.Revision
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
		if err != nil {
			c.failed("list", mRange, err)
			continue
		}
		c.latency(time.Since(began))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func newClient(ctx context.Context, rec *recorder, k kind, mode string, i int, o options) (*client, error) {
	c := &client{name: fmt.Sprintf("%s/%s#%d", k.name, mode, i), kind: k.name, mode: mode, rec: rec,
		peers: map[string]string{}, seen: map[any]time.Time{}}
	dial := []grpc.DialOption{grpc.WithChainUnaryInterceptor(c.unary), grpc.WithChainStreamInterceptor(c.stream)}
	if mode == "health" {
		dial = append(dial, grpc.WithDisableServiceConfig(), grpc.WithDefaultServiceConfig(healthServiceConfig))
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            o.endpoints,
		DialTimeout:          20 * time.Second,
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
		DialOptions:          dial,
		Logger:               zap.NewNop(),
		Context:              ctx,
	})
	if err != nil {
		return nil, err
	}
	c.Client = cli
	rec.with(k.name, mode, func(s *Stats) { s.Clients++; s.LatencyOf = k.latencyOf })
	return c, nil
}

func main() {
	endpoints := flag.String("endpoints", "", "etcd client URLs, comma-separated (every client gets all of them)")
	prefix := flag.String("prefix", "/bench/go", "key prefix of everything the clients write")
	perKind := flag.Int("per-kind", 3, "clients of each kind in each mode")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of each request")
	txnEvery := flag.Duration("txn-every", 100*time.Millisecond, "pause between two writes of one txn client")
	listEvery := flag.Duration("list-every", 500*time.Millisecond, "pause between two lists of one list client")
	listKeys := flag.Int("list-keys", 300, "keys under <prefix>/list/ written at start for the list clients")
	flag.Parse()
	if *endpoints == "" {
		fmt.Fprintln(os.Stderr, "etcd-clients: -endpoints is required")
		os.Exit(2)
	}
	o := options{strings.Split(*endpoints, ","), *prefix, *timeout, *txnEvery, *listEvery}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	rec := &recorder{start: time.Now(), stats: map[string]*Stats{}}

	seed, err := clientv3.New(clientv3.Config{Endpoints: o.endpoints, DialTimeout: 20 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-clients:", err)
		os.Exit(1)
	}
	for i := 0; i < *listKeys; i++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := seed.Put(pctx, fmt.Sprintf("%s/list/%05d", o.prefix, i), strings.Repeat("x", 200))
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd-clients: writing the list keys:", err)
			os.Exit(1)
		}
	}
	seed.Close()

	var wg sync.WaitGroup
	for _, k := range kinds {
		for _, mode := range modes {
			for i := 0; i < *perKind; i++ {
				c, err := newClient(ctx, rec, k, mode, i, o)
				if err != nil {
					fmt.Fprintln(os.Stderr, "etcd-clients:", err)
					os.Exit(1)
				}
				rec.clients = append(rec.clients, c)
				wg.Add(1)
				go func() { defer wg.Done(); defer c.Close(); k.run(ctx, c, i, o) }()
			}
		}
	}
	fmt.Println(`{"ready":true}`)

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if label, ok := strings.CutPrefix(in.Text(), "report "); ok {
			os.Stdout.Write(append(rec.report(label), '\n'))
		}
	}
	stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
}

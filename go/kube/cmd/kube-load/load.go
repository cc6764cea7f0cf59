package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// ---- /readyz ----

type readyzPoller struct {
	client *http.Client
	url    string
	rec    *recorder
}

func newReadyzPoller(cfg *rest.Config, rec *recorder) (*readyzPoller, error) {
	// The same TLS and token as the load, but not through rest.Request: the polls are not load
	// and stay out of the request counts.
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	// Longer than apiserver's own etcd readiness timeout (2 s), so its verdict is what we see.
	c.Timeout = 5 * time.Second
	return &readyzPoller{client: c, url: strings.TrimSuffix(cfg.Host, "/") + "/readyz?verbose", rec: rec}, nil
}

func (p *readyzPoller) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *readyzPoller) poll(ctx context.Context) {
	at := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return
	}
	resp, err := p.client.Do(req)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		p.rec.readyz(at, false, "error: "+err.Error(), nil)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		p.rec.readyz(at, true, "", nil)
		return
	}
	var failed []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "[-]") {
			failed = append(failed, line)
		}
	}
	p.rec.readyz(at, false, fmt.Sprint(resp.StatusCode), failed)
}

// ---- informers ----

// startInformers runs one informer per resource in the namespace, each on a ListWatch that counts
// its listings (LIST calls, and watches that ask for the initial list under WatchList) and watches.
func startInformers(ctx context.Context, cs kubernetes.Interface, ns string, rec *recorder) map[string]cache.SharedIndexInformer {
	type lw struct {
		list  func(context.Context, metav1.ListOptions) (runtime.Object, error)
		watch func(context.Context, metav1.ListOptions) (watch.Interface, error)
		obj   runtime.Object
	}
	kinds := map[string]lw{
		"configmaps": {
			func(c context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return cs.CoreV1().ConfigMaps(ns).List(c, o)
			},
			func(c context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return cs.CoreV1().ConfigMaps(ns).Watch(c, o)
			},
			&corev1.ConfigMap{},
		},
		"events": {
			func(c context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return cs.CoreV1().Events(ns).List(c, o)
			},
			func(c context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return cs.CoreV1().Events(ns).Watch(c, o)
			},
			&corev1.Event{},
		},
		"leases": {
			func(c context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return cs.CoordinationV1().Leases(ns).List(c, o)
			},
			func(c context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return cs.CoordinationV1().Leases(ns).Watch(c, o)
			},
			&coordinationv1.Lease{},
		},
	}
	out := map[string]cache.SharedIndexInformer{}
	for name, k := range kinds {
		listWatch := &cache.ListWatch{
			ListWithContextFunc: func(c context.Context, o metav1.ListOptions) (runtime.Object, error) {
				rec.informerList(name)
				return k.list(c, o)
			},
			WatchFuncWithContext: func(c context.Context, o metav1.ListOptions) (watch.Interface, error) {
				if o.SendInitialEvents != nil && *o.SendInitialEvents {
					rec.informerList(name)
				}
				rec.informerWatch(name)
				w, err := k.watch(c, o)
				if err != nil && c.Err() == nil {
					rec.each(func(s *stats) { s.informer(name).WatchErrors++ })
				}
				return w, err
			},
		}
		inf := cache.NewSharedIndexInformer(listWatch, k.obj, 0, cache.Indexers{})
		count := func() { rec.each(func(s *stats) { s.informer(name).Events++ }) }
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { count() },
			UpdateFunc: func(any, any) { count() },
			DeleteFunc: func(any) { count() },
		})
		go inf.RunWithContext(ctx)
		out[name] = inf
	}
	return out
}

// ---- leader election ----

type election struct {
	cs       kubernetes.Interface
	ns       string
	lease    string
	identity string
	p        profile
	rec      *recorder
	stopping *stopFlag
	mu       sync.Mutex
	isLeader bool
}

func newElection(cs kubernetes.Interface, ns, lease, identity string, p profile, rec *recorder, stopping *stopFlag) *election {
	return &election{cs: cs, ns: ns, lease: lease, identity: identity, p: p, rec: rec, stopping: stopping}
}

func (e *election) leading() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.isLeader
}

// run stands as a candidate until ctx ends. A lost lease is what kube-controller-manager exits
// on (and its pod restarts); here the candidate counts it and stands again.
func (e *election) run(ctx context.Context) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.ns, Name: e.lease},
		Client:     e.cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   e.p.lease,
			RenewDeadline:   e.p.renew,
			RetryPeriod:     e.p.retry,
			ReleaseOnCancel: true,
			Name:            e.lease,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					e.mu.Lock()
					e.isLeader = true
					e.mu.Unlock()
					e.rec.each(func(s *stats) { s.lease(e.lease).Acquired++ })
				},
				OnStoppedLeading: func() {
					e.mu.Lock()
					was := e.isLeader
					e.isLeader = false
					e.mu.Unlock()
					// client-go calls this when Run returns, led or not; only a leader that was not
					// told to stop has lost its lease.
					if was && !e.stopping.get() {
						e.rec.leaseLost(e.lease, e.identity)
					}
				},
				OnNewLeader: func(identity string) { e.rec.newLeader(e.lease, identity) },
			},
		})
		if err != nil {
			panic(err) // the timings are ours and valid
		}
		le.Run(ctx)
	}
}

func (r *recorder) leaseLost(lease, identity string) {
	ev := leaseEvent{At: time.Now(), Kind: "lost", Identity: identity}
	r.each(func(s *stats) {
		l := s.lease(lease)
		l.Lost++
		l.event(ev)
	})
}

// newLeader counts a hand-over when a candidate sees another leader than the last one any
// candidate saw (every candidate reports each change; the first leader of the run is none).
func (r *recorder) newLeader(lease, identity string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.total.leaseHolders[lease]
	if prev == identity {
		return
	}
	r.total.leaseHolders[lease] = identity
	if prev == "" {
		return
	}
	ev := leaseEvent{At: time.Now(), Kind: "handover", Identity: identity}
	for _, s := range []*stats{r.total, r.window} {
		l := s.lease(lease)
		l.Handovers++
		l.event(ev)
	}
}

func (r *recorder) informerWatch(resource string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.total.informer(resource).Watches == 0
	for _, s := range []*stats{r.total, r.window} {
		i := s.informer(resource)
		i.Watches++
		if !first {
			i.Restarts++
		}
	}
}

// ---- writers ----

// callTimeout bounds one writer call, client-go's retries included; the stop waits for the call in
// flight rather than cutting it off.
const callTimeout = 60 * time.Second

// newPayload makes the random (incompressible) bytes every ConfigMap carries; each write changes
// a few of them so that no two revisions are the same.
func newPayload(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// configmapWriter cycles through its ConfigMaps: create, update --delete-after times, delete,
// create again. Every update and delete leaves a dead revision of the whole object in etcd.
func configmapWriter(ctx context.Context, cs kubernetes.Interface, o options, w int, payload []byte, rec *recorder) {
	api := cs.CoreV1().ConfigMaps(o.namespace)
	updates := make([]int, o.configmapsEach) // -1: absent
	for i := range updates {
		updates[i] = -1
	}
	data := append([]byte(nil), payload...)
	for n := 0; ctx.Err() == nil; n++ {
		i := n % max(o.configmapsEach, 1)
		name := fmt.Sprintf("load-w%d-%d", w, i)
		if len(data) > 0 {
			_, _ = rand.Read(data[:min(16, len(data))])
		}
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "defragd-kube-load"}},
			BinaryData: map[string][]byte{"payload": data},
		}
		rctx, done := context.WithTimeout(context.Background(), callTimeout)
		start := time.Now()
		var err error
		var op string
		switch {
		case updates[i] < 0:
			op = "configmap-create"
			_, err = api.Create(rctx, cm, metav1.CreateOptions{})
			if err == nil || apierrors.IsAlreadyExists(err) {
				updates[i] = 0
			}
		case updates[i] >= o.deleteAfter:
			op = "configmap-delete"
			err = api.Delete(rctx, name, metav1.DeleteOptions{})
			if err == nil || apierrors.IsNotFound(err) {
				updates[i] = -1
			}
		default:
			op = "configmap-update"
			_, err = api.Update(rctx, cm, metav1.UpdateOptions{}) // unconditional: ConfigMaps allow it
			if err == nil {
				updates[i]++
			} else if apierrors.IsNotFound(err) {
				updates[i] = -1
			}
		}
		done()
		rec.op(op, time.Since(start), errReason(err))
		if !sleepCtx(ctx, o.configmapInterval) {
			return
		}
	}
}

func eventWriter(ctx context.Context, cs kubernetes.Interface, o options, w int, rec *recorder) {
	api := cs.CoreV1().Events(o.namespace)
	for n := 0; ctx.Err() == nil; n++ {
		now := metav1.Now()
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{GenerateName: fmt.Sprintf("load-w%d-", w)},
			InvolvedObject: corev1.ObjectReference{
				Kind: "ConfigMap", Namespace: o.namespace, Name: fmt.Sprintf("load-w%d-%d", w, n%max(o.configmapsEach, 1)), APIVersion: "v1",
			},
			Reason: "DefragdLoad", Message: fmt.Sprintf("event %d of writer %d", n, w), Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "defragd-kube-load"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
		}
		rctx, done := context.WithTimeout(context.Background(), callTimeout)
		start := time.Now()
		_, err := api.Create(rctx, ev, metav1.CreateOptions{})
		done()
		rec.op("event-create", time.Since(start), errReason(err))
		if !sleepCtx(ctx, o.eventInterval) {
			return
		}
	}
}

func errReason(err error) string {
	if err == nil || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
		// The writer's bookkeeping fell behind a retried call that had succeeded: not a failure.
		return ""
	}
	return reasonOf(err)
}

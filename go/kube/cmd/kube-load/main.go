// kube-load: a control plane's worth of client-go load against a kube-apiserver, to measure what an
// etcd defragmentation costs the clients of Kubernetes. It runs
//
//   - controllers with client-go leader election on Lease objects (kube-controller-manager's
//     timings, or a faster profile, and its request timeout of half the renew deadline), several
//     candidates per lease so that a lost lease hands over;
//   - informers (list + watch) on ConfigMaps, Events and Leases;
//   - writers that create, update and delete large ConfigMaps (each update leaves a dead revision
//     that apiserver's compaction frees: fragmentation) and create Events;
//   - a poller of apiserver's /readyz?verbose (its etcd check) every 100 ms,
//
// and prints one JSON report a line on stdout: when asked (a line "report" on stdin), on SIGTERM or
// SIGINT, and at the end of --duration. Each report has the whole run ("total") and the window since
// the previous report ("window"). Logs (klog) go to stderr.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// profile is a leader-election timing set.
type profile struct{ lease, renew, retry time.Duration }

var profiles = map[string]profile{
	// kube-controller-manager's and kube-scheduler's defaults (component-base's LeaderElectionConfiguration).
	"kcm": {15 * time.Second, 10 * time.Second, 2 * time.Second},
	// Shorter, so that a short stall already costs a lease: what a tight test wants to see.
	"fast": {4 * time.Second, 3 * time.Second, 500 * time.Millisecond},
}

type options struct {
	kubeconfig, server, token, caFile string
	insecure                          bool
	qps                               float64
	burst                             int
	namespace                         string
	leases, candidates                int
	profile                           string
	configmapWriters, configmapsEach  int
	configmapBytes, deleteAfter       int
	configmapInterval                 time.Duration
	eventWriters                      int
	eventInterval                     time.Duration
	readyzInterval, duration          time.Duration
	startTimeout                      time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (else --server and --token)")
	flag.StringVar(&o.server, "server", "", "apiserver URL, e.g. https://127.0.0.1:6443")
	flag.StringVar(&o.token, "token", "", "bearer token")
	flag.StringVar(&o.caFile, "certificate-authority", "", "CA file for the apiserver's serving certificate")
	flag.BoolVar(&o.insecure, "insecure-skip-tls-verify", false, "do not verify the apiserver's serving certificate")
	flag.Float64Var(&o.qps, "qps", 200, "client-side rate limit (client-go's default 5 would throttle the load itself)")
	flag.IntVar(&o.burst, "burst", 400, "client-side burst")
	flag.StringVar(&o.namespace, "namespace", "defragd-load", "namespace for every object (created when missing)")
	flag.IntVar(&o.leases, "controllers", 3, "leader-elected controllers (one Lease each)")
	flag.IntVar(&o.candidates, "candidates", 2, "candidates per Lease (a lost lease hands over to another)")
	flag.StringVar(&o.profile, "profile", "kcm", "leader-election timings: kcm (lease 15s, renew deadline 10s, retry 2s) or fast (4s, 3s, 500ms)")
	flag.IntVar(&o.configmapWriters, "configmap-writers", 2, "goroutines writing ConfigMaps")
	flag.IntVar(&o.configmapsEach, "configmaps", 10, "ConfigMaps each writer cycles through")
	flag.IntVar(&o.configmapBytes, "configmap-bytes", 256*1024, "random bytes per ConfigMap (binaryData; at most 1 MiB)")
	flag.IntVar(&o.deleteAfter, "delete-after", 5, "updates of a ConfigMap before it is deleted (and created again)")
	flag.DurationVar(&o.configmapInterval, "configmap-interval", 100*time.Millisecond, "pause between one writer's ConfigMap writes")
	flag.IntVar(&o.eventWriters, "event-writers", 1, "goroutines creating Events")
	flag.DurationVar(&o.eventInterval, "event-interval", 200*time.Millisecond, "pause between one writer's Events")
	flag.DurationVar(&o.readyzInterval, "readyz-interval", 100*time.Millisecond, "how often /readyz?verbose is polled")
	flag.DurationVar(&o.duration, "duration", 0, "stop after this long (0: until SIGTERM/SIGINT)")
	flag.DurationVar(&o.startTimeout, "start-timeout", 60*time.Second, "how long to wait for the apiserver at start")
	klog.InitFlags(nil)
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "kube-load: %v\n", err)
		os.Exit(1)
	}
}

func restConfig(o options) (*rest.Config, error) {
	var cfg *rest.Config
	if o.kubeconfig != "" {
		c, err := clientcmd.BuildConfigFromFlags(o.server, o.kubeconfig)
		if err != nil {
			return nil, err
		}
		cfg = c
	} else {
		if o.server == "" {
			return nil, fmt.Errorf("give --kubeconfig, or --server and --token")
		}
		cfg = &rest.Config{Host: o.server, BearerToken: o.token}
		cfg.TLSClientConfig = rest.TLSClientConfig{Insecure: o.insecure, CAFile: o.caFile}
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	cfg.UserAgent = "defragd-kube-load"
	return cfg, nil
}

func run(o options) error {
	p, ok := profiles[o.profile]
	if !ok {
		return fmt.Errorf("--profile %q: want kcm or fast", o.profile)
	}
	if o.configmapBytes < 0 || o.configmapBytes > 1<<20 {
		return fmt.Errorf("--configmap-bytes %d: want 0..1048576", o.configmapBytes)
	}
	cfg, err := restConfig(o)
	if err != nil {
		return err
	}
	rec := newRecorder()
	registerMetrics(rec) // before the first client is made: client-go reads the adapters once
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ensureNamespace(ctx, cs, o.namespace, o.startTimeout); err != nil {
		return err
	}

	var stopping stopFlag
	var wg sync.WaitGroup
	goRun := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}

	readyz, err := newReadyzPoller(cfg, rec)
	if err != nil {
		return err
	}
	goRun(func() { readyz.run(ctx, o.readyzInterval) })
	infs := startInformers(ctx, cs, o.namespace, rec)
	// As kube-controller-manager and kube-scheduler make it (client-go's resourcelock.NewFromKubeconfig):
	// leader election on a client of its own whose requests time out at half the renew deadline (at
	// least 1 s), so a renewal stuck on a stalled etcd member is given up and tried again in time.
	leCfg := rest.CopyConfig(cfg)
	leCfg.Timeout = max(p.renew/2, time.Second)
	leCS, err := kubernetes.NewForConfig(rest.AddUserAgent(leCfg, "leader-election"))
	if err != nil {
		return err
	}
	elections := make([]*election, 0, o.leases*o.candidates)
	for l := 0; l < o.leases; l++ {
		for c := 0; c < o.candidates; c++ {
			e := newElection(leCS, o.namespace, fmt.Sprintf("load-controller-%d", l), fmt.Sprintf("kube-load-%d-c%d", os.Getpid(), c), p, rec, &stopping)
			elections = append(elections, e)
			goRun(func() { e.run(ctx) })
		}
	}
	// The writers stop first, each after its call in flight (not cut off: a cancelled call would
	// count as a failed request that the load itself caused), then the final report is taken.
	wctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	var writers sync.WaitGroup
	payload := newPayload(o.configmapBytes)
	for w := 0; w < o.configmapWriters; w++ {
		writers.Go(func() { configmapWriter(wctx, cs, o, w, payload, rec) })
	}
	for w := 0; w < o.eventWriters; w++ {
		writers.Go(func() { eventWriter(wctx, cs, o, w, rec) })
	}

	config := map[string]string{
		"profile": o.profile, "leaseDuration": p.lease.String(), "renewDeadline": p.renew.String(), "retryPeriod": p.retry.String(),
		"leaderElectionRequestTimeout": leCfg.Timeout.String(), "controllers": fmt.Sprint(o.leases), "candidates": fmt.Sprint(o.candidates),
		"configmapWriters": fmt.Sprint(o.configmapWriters), "configmaps": fmt.Sprint(o.configmapsEach),
		"configmapBytes": fmt.Sprint(o.configmapBytes), "configmapInterval": o.configmapInterval.String(),
		"eventWriters": fmt.Sprint(o.eventWriters), "eventInterval": o.eventInterval.String(),
		"namespace": o.namespace, "server": cfg.Host,
	}
	seq := 0
	holders := func() map[string]string {
		h := map[string]string{}
		for _, e := range elections {
			if _, seen := h[e.lease]; !seen {
				h[e.lease] = ""
			}
			if e.leading() {
				h[e.lease] = e.identity
			}
		}
		return h
	}
	emit := func(reason string, held map[string]string) {
		seq++
		rep := &report{Reason: reason, At: time.Now(), Seq: seq, Config: config, Holders: held, Objects: map[string]int{}}
		for name, inf := range infs {
			rep.Objects[name] = len(inf.GetStore().ListKeys())
		}
		rec.snapshot(rep)
		b, err := json.Marshal(rep)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kube-load: report: %v\n", err)
			return
		}
		os.Stdout.Write(append(b, '\n'))
	}

	asked := make(chan struct{})
	go func() {
		s := bufio.NewScanner(os.Stdin)
		for s.Scan() {
			if strings.TrimSpace(s.Text()) == "report" {
				asked <- struct{}{}
			}
		}
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	var end <-chan time.Time
	if o.duration > 0 {
		end = time.After(o.duration)
	}
	reason := ""
	for reason == "" {
		select {
		case <-asked:
			emit("report", holders())
		case <-sigs:
			reason = "signal"
		case <-end:
			reason = "end"
		}
	}
	// The final report names the leaders as they were when told to stop, and counts up to the
	// writers' last calls; what stopping costs (calls cut off, leases released) is not in it.
	held := holders()
	stopWriters()
	waitFor(&writers, 10*time.Second, "the writers' last calls")
	emit(reason, held)
	// Candidates release their leases (ReleaseOnCancel) so a next run starts at once; a leader
	// that stops now has not lost its lease.
	stopping.set()
	cancel()
	waitFor(&wg, 5*time.Second, "the leases' release")
	return nil
}

func waitFor(wg *sync.WaitGroup, d time.Duration, what string) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		fmt.Fprintf(os.Stderr, "kube-load: %s took longer than %s; going on\n", what, d)
	}
}

type stopFlag struct {
	mu sync.Mutex
	on bool
}

func (s *stopFlag) set() { s.mu.Lock(); s.on = true; s.mu.Unlock() }
func (s *stopFlag) get() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.on
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, ns string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("namespace %s not created within %s: %w", ns, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// reasonOf names a failed call by apiserver's reason (Conflict, InternalError, Timeout, ...) or,
// when no status came back, "NoResponse".
func reasonOf(err error) string {
	if r := apierrors.ReasonForError(err); r != metav1.StatusReasonUnknown {
		return string(r)
	}
	if _, isStatus := err.(apierrors.APIStatus); isStatus {
		return "Unknown"
	}
	return "NoResponse"
}

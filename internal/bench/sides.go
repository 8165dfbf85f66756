package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// side is one way of taking the snapshots: livesnap, or one ffmpeg per stream.
type side interface {
	// setup prepares what runs before any stream (livesnap: serve, a template).
	setup(ctx context.Context) error
	// startStream starts taking snapshots of stream i at url.
	startStream(ctx context.Context, i int, url string) error
	// pids are the processes to measure.
	pids() []int
	// hasShot reports whether stream i has written a snapshot yet.
	hasShot(i int) bool
	// shots returns, per stream, when each snapshot appeared, and notes on anything odd.
	shots(ctx context.Context) ([][]time.Time, snapStats, error)
	// stop ends every process of the side.
	stop()
}

// goMemSide is a side whose processes report their Go runtime's memory: the harness then
// splits memory growth into the Go heap's and the rest's (C libraries: codec frames, SQLite).
type goMemSide interface {
	// goMem returns the bytes every process's Go runtime holds from the OS (sys minus released).
	goMem(ctx context.Context) (int64, error)
}

// snapStats is what a side tells about its snapshots beyond their times.
type snapStats struct {
	jpegBytes int64 // total size of the snapshots
	count     int
	notes     []string
	misses    map[string]float64 // livesnap: ticks missed, by reason (from /metrics)
}

// ---- livesnap ----

// livesnapSide runs `livesnap serve` on a fresh data directory and one job per stream,
// created through the API.
type livesnapSide struct {
	bin      string
	runners  int // < 0: serve's default
	dir      string
	interval time.Duration
	policy   string
	streams  int

	cli      *apiClient
	cmd      *exec.Cmd
	exited   chan error
	template string
	mu       sync.Mutex
	jobs     map[int]string // stream → JobId
	log      *os.File
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (l *livesnapSide) setup(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	data := filepath.Join(l.dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	l.cli = &apiClient{endpoint: addr, keyID: "LTAIbench" + randomHex(6), secret: randomHex(16),
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	l.jobs = map[int]string{}
	if l.log, err = os.Create(filepath.Join(l.dir, "livesnap.log")); err != nil {
		return err
	}
	minInterval := min(5, max(1, int(l.interval/time.Second)))
	args := []string{"serve", "--listen", addr, "--data", data, "--min-interval", strconv.Itoa(minInterval),
		"--rate-limit", "0", "--log-level", "warn"}
	if l.runners >= 0 {
		args = append(args, "--runners", strconv.Itoa(l.runners))
	}
	cmd := exec.Command(l.bin, args...)
	cmd.Env = append(os.Environ(), "LIVESNAP_ROOT_ACCESS_KEY_ID="+l.cli.keyID, "LIVESNAP_ROOT_ACCESS_KEY_SECRET="+l.cli.secret)
	cmd.Stdout, cmd.Stderr = l.log, l.log
	// serve dies with the thread that started it (Pdeathsig): keep that thread for its life.
	l.exited = make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		l.exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start livesnap: %w", err)
	}
	l.cmd = cmd
	if err := l.waitHealthy(ctx); err != nil {
		return err
	}
	var creds struct{ UserId int64 }
	b, err := os.ReadFile(filepath.Join(data, "credentials.json"))
	if err == nil {
		err = json.Unmarshal(b, &creds)
	}
	if err != nil {
		return fmt.Errorf("read credentials: %w", err)
	}
	// The account's job limit (100 by default) must fit the streams.
	limit := exec.CommandContext(ctx, l.bin, "accounts", "set-limit", "--account", strconv.FormatInt(creds.UserId, 10),
		"--limit", strconv.Itoa(l.streams+10), "--data", data)
	if out, err := limit.CombinedOutput(); err != nil {
		return fmt.Errorf("livesnap accounts set-limit: %v: %s", err, out)
	}
	out, err := l.cli.call(ctx, "CreateLiveSnapshotTemplate", url.Values{
		"TemplateName":   {"bench"},
		"TimeInterval":   {strconv.Itoa(int(l.interval / time.Second))},
		"SequenceFormat": {"snap/{JobId}/{Sequence}-{UnixTimestamp}.jpg"},
		"CapturePolicy":  {l.policy},
	})
	if err != nil {
		return err
	}
	l.template, _ = out["TemplateId"].(string)
	if l.template == "" {
		return fmt.Errorf("CreateLiveSnapshotTemplate answered no TemplateId: %v", out)
	}
	return nil
}

func (l *livesnapSide) waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := l.cli.get(ctx, "/healthz"); err == nil {
			return nil
		}
		select {
		case err := <-l.exited:
			l.exited <- err
			return fmt.Errorf("livesnap serve exited: %v (log: %s)", err, l.log.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("livesnap serve not healthy within 30 s (log: %s)", l.log.Name())
}

func (l *livesnapSide) startStream(ctx context.Context, i int, streamURL string) error {
	in, _ := json.Marshal(map[string]string{"Type": "rtmp", "Url": streamURL})
	out, err := l.cli.call(ctx, "SubmitLiveSnapshotJob", url.Values{
		"JobName":        {"s" + strconv.Itoa(i)},
		"TemplateId":     {l.template},
		"StreamInput":    {string(in)},
		"SnapshotOutput": {`{"StorageType":"oss","Endpoint":"oss-cn-shanghai.aliyuncs.com","Bucket":"bench"}`},
	})
	if err != nil {
		return err
	}
	id, _ := out["JobId"].(string)
	if id == "" {
		return fmt.Errorf("SubmitLiveSnapshotJob answered no JobId: %v", out)
	}
	job, err := l.cli.call(ctx, "GetLiveSnapshotJob", url.Values{"JobId": {id}})
	if err != nil {
		return err
	}
	if st, _ := job["Status"].(string); st != "started" {
		return fmt.Errorf("job %s is %q after submit (the probe did not see the stream)", id, st)
	}
	l.mu.Lock()
	l.jobs[i] = id
	l.mu.Unlock()
	return nil
}

func (l *livesnapSide) hasShot(i int) bool {
	l.mu.Lock()
	id, ok := l.jobs[i]
	l.mu.Unlock()
	return ok && dirHasJPEG(filepath.Join(l.dir, "data", "objects", "bench", "snap", id))
}

// dirHasJPEG reports whether dir holds a .jpg file.
func dirHasJPEG(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(64)
		for _, n := range names {
			if strings.HasSuffix(n, ".jpg") {
				return true
			}
		}
		if err != nil {
			return false
		}
	}
}

func (l *livesnapSide) pids() []int {
	if l.cmd == nil || l.cmd.Process == nil {
		return nil
	}
	return descendants(l.cmd.Process.Pid)
}

// shots reads every job's file records with ListLiveSnapshotFiles and takes each recorded
// object's modification time from the output directory. Only snapshots with both a record
// and an object count.
func (l *livesnapSide) shots(ctx context.Context) ([][]time.Time, snapStats, error) {
	st := snapStats{misses: map[string]float64{}}
	out := make([][]time.Time, l.streams)
	objects := filepath.Join(l.dir, "data", "objects", "bench")
	var missing int
	for i := 0; i < l.streams; i++ {
		id, ok := l.jobs[i]
		if !ok {
			continue
		}
		names, err := l.listFiles(ctx, id)
		if err != nil {
			return nil, st, err
		}
		for _, name := range names {
			fi, err := os.Stat(filepath.Join(objects, filepath.FromSlash(name)))
			if err != nil {
				missing++
				continue
			}
			out[i] = append(out[i], fi.ModTime())
			st.jpegBytes += fi.Size()
			st.count++
		}
	}
	if missing > 0 {
		st.notes = append(st.notes, fmt.Sprintf("%d file records without their object", missing))
	}
	m, err := l.cli.get(ctx, "/metrics")
	if err == nil {
		st.misses, err = missesByReason(m)
	}
	if err != nil {
		st.notes = append(st.notes, "misses not read from /metrics: "+err.Error())
	}
	return out, st, nil
}

// listFiles pages through ListLiveSnapshotFiles for one job (records of the last day).
func (l *livesnapSide) listFiles(ctx context.Context, job string) ([]string, error) {
	start := time.Now().Add(-23 * time.Hour).UTC().Format(time.RFC3339)
	end := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var names []string
	for page := 0; page < 10000; page++ {
		out, err := l.cli.call(ctx, "ListLiveSnapshotFiles", url.Values{"JobId": {job}, "StartTime": {start},
			"EndTime": {end}, "Limit": {"100"}})
		if err != nil {
			return nil, err
		}
		list, _ := out["FileList"].([]any)
		for _, f := range list {
			if m, ok := f.(map[string]any); ok {
				if name, _ := m["OssObject"].(string); name != "" {
					names = append(names, name)
				}
			}
		}
		next, _ := out["NextStartTime"].(string)
		if next == "" {
			return names, nil
		}
		start = next
	}
	return nil, errors.New("ListLiveSnapshotFiles: too many pages")
}

func (l *livesnapSide) goMem(ctx context.Context) (int64, error) {
	m, err := l.cli.get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	return goHeldBytes(m)
}

// goHeldBytes sums, over every process's series of a /metrics text, the memory its Go runtime
// holds from the OS: go_memstats_sys_bytes minus go_memstats_heap_released_bytes.
func goHeldBytes(text string) (int64, error) {
	var sys, released float64
	var seen bool
	err := eachSample(text, func(name, _ string, v float64) {
		switch name {
		case "go_memstats_sys_bytes":
			sys, seen = sys+v, true
		case "go_memstats_heap_released_bytes":
			released += v
		}
	})
	if err != nil {
		return 0, err
	}
	if !seen {
		return 0, errors.New("no go_memstats_sys_bytes in /metrics")
	}
	return int64(sys - released), nil
}

// missesByReason sums livesnap_snapshot_misses_total over processes, by reason.
func missesByReason(text string) (map[string]float64, error) {
	out := map[string]float64{}
	err := eachSample(text, func(name, labels string, v float64) {
		if name != "livesnap_snapshot_misses_total" {
			return
		}
		if _, reason, ok := strings.Cut(labels, `reason="`); ok {
			reason, _, _ = strings.Cut(reason, `"`)
			out[reason] += v
		}
	})
	return out, err
}

// eachSample calls fn with every sample of a Prometheus text exposition: the metric's name,
// its labels as written between the braces, and its value. Comments and blank lines are
// skipped; a sample line whose value is not a number is an error.
func eachSample(text string, fn func(name, labels string, v float64)) error {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if i := strings.LastIndexByte(line, '}'); i >= 0 { // label values may hold spaces
			series, value, ok = line[:i+1], strings.TrimSpace(line[i+1:]), true
		}
		value, _, _ = strings.Cut(strings.TrimSpace(value), " ") // a timestamp may follow
		v, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			return fmt.Errorf("metrics line %q", line)
		}
		name, labels, _ := strings.Cut(series, "{")
		fn(name, strings.TrimSuffix(labels, "}"), v)
	}
	return sc.Err()
}

func (l *livesnapSide) stop() {
	if l.cmd == nil || l.cmd.Process == nil {
		return
	}
	l.cmd.Process.Signal(os.Interrupt)
	select {
	case <-l.exited:
	case <-time.After(20 * time.Second):
		l.cmd.Process.Kill()
		<-l.exited
	}
	l.log.Close()
}

// ---- ffmpeg ----

// ffmpegSide runs the usual recipe: one long-running ffmpeg per stream writing a JPEG per
// interval with the fps filter; -skip_frame nokey for the keyframe policy (only keyframes
// are decoded), every frame decoded for exact.
type ffmpegSide struct {
	bin      string
	dir      string
	interval time.Duration
	policy   string
	streams  int

	mu     sync.Mutex
	cmds   map[int]*exec.Cmd
	exited map[int]chan error
	log    *os.File
}

// ffmpegArgs is the recipe for one stream.
func ffmpegArgs(policy string, interval time.Duration, streamURL, outDir string) []string {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	if policy != "exact" {
		args = append(args, "-skip_frame", "nokey")
	}
	return append(args, "-i", streamURL, "-an", "-vf", fmt.Sprintf("fps=1/%d", int(interval/time.Second)),
		"-f", "image2", "-strftime", "1", filepath.Join(outDir, "%s.jpg"))
}

func (f *ffmpegSide) setup(ctx context.Context) error {
	f.cmds, f.exited = map[int]*exec.Cmd{}, map[int]chan error{}
	var err error
	f.log, err = os.Create(filepath.Join(f.dir, "ffmpeg.log"))
	return err
}

func (f *ffmpegSide) outDir(i int) string { return filepath.Join(f.dir, "out", "s"+strconv.Itoa(i)) }

func (f *ffmpegSide) startStream(ctx context.Context, i int, streamURL string) error {
	dir := f.outDir(i)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Not tied to ctx: stop ends them all. If this process dies, the replay server's
	// connections close and every ffmpeg ends at the end of its stream.
	cmd := exec.Command(f.bin, ffmpegArgs(f.policy, f.interval, streamURL, dir)...)
	cmd.Stdout, cmd.Stderr = f.log, f.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	f.mu.Lock()
	f.cmds[i], f.exited[i] = cmd, done
	f.mu.Unlock()
	return nil
}

func (f *ffmpegSide) hasShot(i int) bool { return dirHasJPEG(f.outDir(i)) }

func (f *ffmpegSide) pids() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]int, 0, len(f.cmds))
	for _, c := range f.cmds {
		out = append(out, c.Process.Pid)
	}
	return out
}

func (f *ffmpegSide) shots(ctx context.Context) ([][]time.Time, snapStats, error) {
	var st snapStats
	out := make([][]time.Time, f.streams)
	f.mu.Lock()
	var died int
	for _, ch := range f.exited {
		select {
		case err := <-ch:
			ch <- err
			died++
		default:
		}
	}
	f.mu.Unlock()
	if died > 0 {
		st.notes = append(st.notes, fmt.Sprintf("%d ffmpeg processes exited early (see %s)", died, f.log.Name()))
	}
	for i := 0; i < f.streams; i++ {
		entries, err := os.ReadDir(f.outDir(i))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".jpg") {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			out[i] = append(out[i], fi.ModTime())
			st.jpegBytes += fi.Size()
			st.count++
		}
	}
	return out, st, nil
}

func (f *ffmpegSide) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(15 * time.Second)
	for i, c := range f.cmds {
		select {
		case err := <-f.exited[i]:
			f.exited[i] <- err
		case <-time.After(time.Until(deadline)):
			c.Process.Kill()
			err := <-f.exited[i]
			f.exited[i] <- err
		}
	}
	if f.log != nil {
		f.log.Close()
	}
}

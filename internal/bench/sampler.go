package bench

import (
	"context"
	"os"
	"sort"
	"sync"
	"time"
)

// memSample is the memory of the measured processes at one moment.
type memSample struct {
	at       time.Time
	rss, pss int64 // pss < 0: not read this time
	goMem    int64 // what the side's Go runtimes hold (see goMemSide); < 0: not read
	procs    int
}

// sampler follows a set of processes: their CPU time over a window and their memory over
// time. pids is called at every sample (a process tree changes: runners restart).
type sampler struct {
	pids     func() []int
	every    time.Duration
	pssEvery int // read PSS every this many samples (it costs more than RSS)
	// goMem, when set, is read with PSS: the memory the side's Go runtimes hold.
	goMem func() (int64, error)

	mu       sync.Mutex
	n        int
	last     map[int]float64 // CPU seconds last seen, per pid
	base     map[int]float64 // CPU seconds at the window's start; nil before it
	cpu      float64         // CPU seconds in the window, once closed
	start    time.Time
	end      time.Time
	pidsSeen map[int]bool
	mem      []memSample
	selfBase float64
	selfCPU  float64 // this process (replay server, harness) in the window
	machBusy float64
	machTot  float64
}

func newSampler(pids func() []int, every time.Duration) *sampler {
	return &sampler{pids: pids, every: every, pssEvery: 5, last: map[int]float64{}, pidsSeen: map[int]bool{}}
}

// run samples until ctx ends.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	s.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *sampler) sample() {
	pids := s.pids()
	s.mu.Lock()
	s.n++
	withPSS := s.n%s.pssEvery == 1
	s.mu.Unlock()
	m := memSample{at: time.Now(), pss: -1, goMem: -1}
	if withPSS {
		m.pss = 0
		if s.goMem != nil {
			if v, err := s.goMem(); err == nil {
				m.goMem = v
			}
		}
	}
	cpu := map[int]float64{}
	for _, pid := range pids {
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		cpu[pid] = st.cpu
		if st.zomb {
			continue
		}
		m.rss += st.rss
		m.procs++
		if withPSS {
			if p, err := readPSS(pid); err == nil {
				m.pss += p
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, v := range cpu {
		s.last[pid] = v
		if s.base != nil && s.end.IsZero() {
			s.pidsSeen[pid] = true
		}
	}
	s.mem = append(s.mem, m)
}

// startWindow begins the CPU window now.
func (s *sampler) startWindow() {
	s.sample()
	self, _ := readStat(os.Getpid())
	busy, tot, _ := machineCPU()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start = time.Now()
	s.base = map[int]float64{}
	for pid, v := range s.last {
		s.base[pid] = v
		s.pidsSeen[pid] = true
	}
	s.selfBase = self.cpu
	s.machBusy, s.machTot = busy, tot
}

// endWindow closes the CPU window now. A process that appeared during the window counts
// from zero; one that vanished counts up to when it was last seen.
func (s *sampler) endWindow() {
	s.sample()
	self, _ := readStat(os.Getpid())
	busy, tot, _ := machineCPU()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.end = time.Now()
	for pid := range s.pidsSeen {
		s.cpu += s.last[pid] - s.base[pid]
	}
	s.selfCPU = self.cpu - s.selfBase
	s.machBusy, s.machTot = busy-s.machBusy, tot-s.machTot
}

// memStats summarises memory: the peak over every sample, and the median, start and end
// levels within the window (start and end: means of its first and last fifth).
type memStats struct {
	peakRSS, steadyRSS, steadyPSS int64
	startRSS, endRSS              int64
	startGo, endGo                int64 // the same for the Go runtimes' memory; -1: not read
	procsMax                      int
}

func (s *sampler) memStats() memStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := memStats{startGo: -1, endGo: -1}
	var in, goIn []memSample
	var pss []int64
	for _, m := range s.mem {
		ms.peakRSS = max(ms.peakRSS, m.rss)
		ms.procsMax = max(ms.procsMax, m.procs)
		if !m.at.Before(s.start) && (s.end.IsZero() || !m.at.After(s.end)) {
			in = append(in, m)
			if m.pss >= 0 {
				pss = append(pss, m.pss)
			}
			if m.goMem >= 0 {
				goIn = append(goIn, m)
			}
		}
	}
	if len(in) == 0 {
		return ms
	}
	rss := make([]int64, len(in))
	for i, m := range in {
		rss[i] = m.rss
	}
	ms.steadyRSS = median(rss)
	if len(pss) > 0 {
		ms.steadyPSS = median(pss)
	}
	fifth := max(1, len(in)/5)
	ms.startRSS = meanRSS(in[:fifth])
	ms.endRSS = meanRSS(in[len(in)-fifth:])
	if len(goIn) > 0 {
		fifth := max(1, len(goIn)/5)
		ms.startGo = meanOf(goIn[:fifth], func(m memSample) int64 { return m.goMem })
		ms.endGo = meanOf(goIn[len(goIn)-fifth:], func(m memSample) int64 { return m.goMem })
	}
	return ms
}

func median(v []int64) int64 {
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func meanRSS(ms []memSample) int64 {
	return meanOf(ms, func(m memSample) int64 { return m.rss })
}

func meanOf(ms []memSample, v func(memSample) int64) int64 {
	var sum int64
	for _, m := range ms {
		sum += v(m)
	}
	return sum / int64(len(ms))
}

package decode

import (
	"context"
	"runtime"
	"sync"

	"github.com/livesnap/livesnap/internal/media"
)

// Pool shares a few Decoders among all the streams of a process. Every Decode call is
// independent (the decoder is flushed after it), so a stream needs a decoder only while one
// of its snapshots is being made: hundreds of streams then cost a handful of decoder
// contexts (each holds several full-size frames) instead of one per stream, and the number
// of decodes running at once is bounded by Size, so a burst of ticks queues instead of
// overcommitting the CPU.
type Pool struct {
	// Size is how many decodes may run at once; 0 → GOMAXPROCS.
	Size int

	once  sync.Once
	slots chan struct{}
	mu    sync.Mutex
	idle  map[media.Codec][]*Decoder
}

func (p *Pool) init() {
	p.once.Do(func() {
		n := p.Size
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		p.slots = make(chan struct{}, n)
		p.idle = make(map[media.Codec][]*Decoder)
	})
}

// Decode waits for a free slot (or ctx), then decodes like Decoder.Decode with a pooled
// decoder for the units' codec.
func (p *Pool) Decode(ctx context.Context, units []media.AccessUnit, opt Options) (Picture, error) {
	p.init()
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return Picture{}, ctx.Err()
	}
	defer func() { <-p.slots }()
	if len(units) == 0 {
		return Picture{}, errNoUnits
	}
	codec := units[0].Codec
	d, err := p.get(codec)
	if err != nil {
		return Picture{}, err
	}
	pic, err := d.Decode(units, opt)
	p.put(codec, d)
	return pic, err
}

func (p *Pool) get(codec media.Codec) (*Decoder, error) {
	p.mu.Lock()
	if list := p.idle[codec]; len(list) > 0 {
		d := list[len(list)-1]
		p.idle[codec] = list[:len(list)-1]
		p.mu.Unlock()
		return d, nil
	}
	p.mu.Unlock()
	return New(codec)
}

// put keeps a decoder for reuse. At most cap(slots) decoders per codec are ever idle, since
// no more than that are in use at once.
func (p *Pool) put(codec media.Codec, d *Decoder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle[codec]) >= cap(p.slots) {
		d.Close()
		return
	}
	p.idle[codec] = append(p.idle[codec], d)
}

// Close frees the idle decoders. Decodes still running return theirs to an empty pool, which
// keeps them until the next Close.
func (p *Pool) Close() {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, list := range p.idle {
		for _, d := range list {
			d.Close()
		}
		delete(p.idle, c)
	}
}

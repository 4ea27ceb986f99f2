package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/pimbridge/pimbridge/bridge"
)

// progressMin is "more than a few hundred items": a cycle that moves fewer
// says nothing while it runs.
const progressMin = 300

// cycleProgress shows the writes of a long cycle per collection: on a
// terminal a bar each (count, rate, estimate), redrawn in place, for the
// first such cycle of the process (the daemon's first full sync); else,
// and on later cycles, a plain line per tenth.
type cycleProgress struct {
	w   io.Writer
	tty bool

	mu       sync.Mutex
	cols     []*colBar
	byCol    map[string]*colBar
	drawn    int // lines of bars on screen
	lastDraw time.Time
	barsUsed bool // a cycle already had its bars
	useBars  bool // this cycle draws bars
}

type colBar struct {
	name        string
	bar         *progressbar.ProgressBar
	done, total int
	tenth       int
}

func newCycleProgress(w io.Writer) *cycleProgress {
	return &cycleProgress{w: w, tty: isTerminal(w), byCol: map[string]*colBar{}}
}

// report is bridge.Options.CollectionProgress.
func (c *cycleProgress) report(p bridge.CollectionProgress) {
	if p.CycleTotal <= progressMin {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cb := c.byCol[p.Collection]
	if p.Done == 0 && cb != nil {
		c.newCycle() // the bridge reports every collection at 0 when a cycle starts
		cb = nil
	}
	if cb == nil {
		if len(c.cols) == 0 {
			c.useBars = c.tty && !c.barsUsed
		}
		cb = &colBar{name: p.Collection, tenth: -1}
		if c.useBars {
			cb.bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(io.Discard),
				progressbar.OptionSetDescription(fmt.Sprintf("%-24s", p.Collection)), progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("items"), progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetWidth(24), progressbar.OptionThrottle(0), progressbar.OptionSetRenderBlankState(true))
		}
		c.cols = append(c.cols, cb)
		c.byCol[p.Collection] = cb
	}
	cb.done, cb.total = p.Done, p.Total
	if !c.useBars {
		if cb.total == 0 {
			return
		}
		if t := cb.done * 10 / cb.total; t != cb.tenth && cb.done > 0 {
			cb.tenth = t
			fmt.Fprintf(c.w, "pimbridge: %s: %d of %d items (%d%%)\n", cb.name, cb.done, cb.total, cb.done*100/cb.total)
		}
		return
	}
	_ = cb.bar.Set(cb.done)
	finished := cb.done == cb.total
	if finished || time.Since(c.lastDraw) >= 100*time.Millisecond {
		c.draw()
	}
}

// draw rewrites the bars in place: up over the lines drawn last, then a
// line per collection.
func (c *cycleProgress) draw() {
	var b strings.Builder
	if c.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", c.drawn)
	}
	for _, cb := range c.cols {
		b.WriteString("\r\x1b[K")
		b.WriteString(strings.TrimLeft(cb.bar.String(), "\r"))
		b.WriteString("\n")
	}
	c.drawn = len(c.cols)
	c.lastDraw = time.Now()
	io.WriteString(c.w, b.String())
}

func (c *cycleProgress) newCycle() {
	if c.useBars {
		c.draw()
		c.barsUsed = true
	}
	c.cols, c.byCol, c.drawn, c.useBars = nil, map[string]*colBar{}, 0, false
}

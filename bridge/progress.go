package bridge

// CollectionProgress is one step of a cycle's writes in one collection:
// Done of Total pairs of Collection (an href) started, out of CycleTotal
// pairs due in the whole cycle.
type CollectionProgress struct {
	Collection  string
	Done, Total int
	CycleTotal  int
}

// colProgress counts the pairs of each collection for
// Options.CollectionProgress; its methods do nothing when that is nil.
type colProgress struct {
	fn          func(CollectionProgress)
	done, total map[string]int
	order       []string
	all         int
}

func newColProgress(fn func(CollectionProgress)) *colProgress {
	return &colProgress{fn: fn, done: map[string]int{}, total: map[string]int{}}
}

// add counts one due pair of col.
func (p *colProgress) add(col string) {
	if p.fn == nil {
		return
	}
	if _, ok := p.total[col]; !ok {
		p.order = append(p.order, col)
	}
	p.total[col]++
	p.all++
}

// start reports every collection at zero, in order of first appearance.
func (p *colProgress) start() {
	for _, col := range p.order {
		p.fn(CollectionProgress{Collection: col, Total: p.total[col], CycleTotal: p.all})
	}
}

// step reports one more pair of col done.
func (p *colProgress) step(col string) {
	if p.fn == nil {
		return
	}
	p.done[col]++
	p.fn(CollectionProgress{Collection: col, Done: p.done[col], Total: p.total[col], CycleTotal: p.all})
}

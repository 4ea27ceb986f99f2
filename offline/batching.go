package offline

import "time"

// BatchSettings are the dynamic batching parameters of seed 001 Appendix C
// (the [offline] table of the config). Zero fields take the seed's
// defaults: 100000 rows, 10 s, 60 s, 2, 2, 3.
type BatchSettings struct {
	RowsBatchSize int
	MinBatchTime  time.Duration
	MaxBatchTime  time.Duration
	IncreaseRate  float64
	DecreaseRate  float64
	MaxRetryCount int // negative: no retries
}

func (s BatchSettings) withDefaults() BatchSettings {
	if s.RowsBatchSize <= 0 {
		s.RowsBatchSize = 100000
	}
	if s.MinBatchTime <= 0 {
		s.MinBatchTime = 10 * time.Second
	}
	if s.MaxBatchTime <= 0 {
		s.MaxBatchTime = 60 * time.Second
	}
	if s.IncreaseRate < 1 {
		s.IncreaseRate = 2
	}
	if s.DecreaseRate < 1 {
		s.DecreaseRate = 2
	}
	if s.MaxRetryCount == 0 {
		s.MaxRetryCount = 3
	}
	return s
}

// Sizer computes the size of each batch of one entity: the first is
// min(count, RowsBatchSize); a batch that took less than MinBatchTime
// multiplies the next size by IncreaseRate, one that took more than
// MaxBatchTime divides it by DecreaseRate (never below one row).
type Sizer struct {
	set  BatchSettings
	size int
}

// NewSizer starts sizing for an entity with count pending rows.
func NewSizer(set BatchSettings, count int64) *Sizer {
	set = set.withDefaults()
	size := set.RowsBatchSize
	if count > 0 && count < int64(size) {
		size = int(count)
	}
	return &Sizer{set: set, size: max(size, 1)}
}

// Size is the size to ask for next.
func (s *Sizer) Size() int { return s.size }

// Observe adjusts the size after a batch that took d.
func (s *Sizer) Observe(d time.Duration) {
	switch {
	case d < s.set.MinBatchTime:
		next := float64(s.size) * s.set.IncreaseRate
		if next > 1<<30 {
			next = 1 << 30
		}
		s.size = int(next)
	case d > s.set.MaxBatchTime:
		s.size = max(int(float64(s.size)/s.set.DecreaseRate), 1)
	}
}
